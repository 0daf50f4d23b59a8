"""LINE media across the zones: the relay fetches the bytes from LINE's content API (the core,
in LGWAN, cannot reach it), they cross with the webhook body, staff on the core see only the
converted form, and the relay keeps nothing once the core has taken them. Converted in the core
(the default) or already in the relay (MADOGUCHI_SANITISE_IN=relay)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from PIL import Image

from channels.line import transfer as line_transfer
from channels.line.models import LineDelivery, LineMedia, LineRelayContent, MediaStatus
from consult.extensions import db
from consult.models import SafeFile, SafeFileStatus, Ticket
from consult.services import safe_files
from tests import sanitise_files as files
from tests.channels.line.conftest import body_of, new_staff
from tests.channels.line.fake_line import sign
from tests.channels.line.test_sanitise_media import _media_event
from tests.helpers import sign_in
from tests.transfer.test_zones import core_round, count


def send_body(relay, body: str) -> requests.Response:
    return requests.post(
        relay.url + "/channels/line/webhook",
        data=body.encode(),
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        timeout=10,
    )


def content_calls(fake_line) -> list:
    return [r for r in fake_line.requests if r.path.endswith("/content")]


def relay_files(relay) -> list[Path]:
    folder = Path(relay.app.config["MADOGUCHI"]["DATA_DIR"]) / "relay" / "line"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _send_photo_and_page(relay, fake_line):
    photo = files.jpeg_with_gps()
    fake_line.content["zp1"] = (photo, "image/jpeg")
    fake_line.content["zf1"] = (files.html(), "text/html")
    body = body_of(
        _media_event("zp1", contentProvider={"type": "line"}),
        _media_event("zf1", "file", fileName="お知らせ.html", fileSize=100),
    )
    assert send_body(relay, body).status_code == 200
    return photo


def _staff_page(core, number):
    desk = core.test_client()
    sign_in(desk, new_staff())
    return desk, desk.get(f"/tickets/{number}").get_data(as_text=True)


def _check_staff_sees_only_the_converted_photo(core, photo):
    media = {m.message_id: m for m in db.session.scalars(sa.select(LineMedia))}
    assert {m.status for m in media.values()} == {MediaStatus.FETCHED}
    safe = safe_files.for_source("line_media", [m.id for m in media.values()])
    photo_file, html_file = safe[media["zp1"].id], safe[media["zf1"].id]
    assert photo_file.status == SafeFileStatus.READY
    assert html_file.status == SafeFileStatus.QUARANTINED
    number = db.session.get(Ticket, photo_file.ticket_id).number
    desk, page = _staff_page(core, number)
    assert "変換済み" in page and "隔離中" in page and "HTMLファイル" in page
    image = desk.get(f"/files/{photo_file.id}/pages/1")
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(image.data)).getexif()
    assert photo not in image.data and b"SecretPhone" not in image.data
    for url in (f"/files/{html_file.id}", f"/files/{html_file.id}/original"):
        assert b"<script>" not in desk.get(url).data
    return photo_file, html_file


def test_a_photo_sent_to_the_relay_is_fetched_there_and_shown_converted_on_the_core(
    relay, core, fake_line
):
    photo = _send_photo_and_page(relay, fake_line)
    # Before the relay has fetched the bytes the body waits there: nothing crosses without them.
    assert core_round().pulled == 0
    with relay.context():
        assert count(LineDelivery) == 1
        assert line_transfer.relay_task() == 2  # the relay's worker: LINE's content API
        assert count(LineRelayContent) == 2
    assert len(content_calls(fake_line)) == 2

    assert core_round().pulled == 1
    # The core never calls LINE's content endpoint (its LINE address is a closed port: a call
    # would have failed the media); the relay was asked once per file.
    assert len(content_calls(fake_line)) == 2
    with relay.context():
        assert count(LineDelivery) == 0 and count(LineRelayContent) == 0
    assert relay_files(relay) == []  # the relay deleted its copy once the core took it
    assert count(LineRelayContent) == 0  # staged on the core, then given to the media rows

    # Converted on the core (the default MADOGUCHI_SANITISE_IN=core): the original is here.
    safe_files.convert_due(limit=10)
    db.session.remove()
    photo_file, _html = _check_staff_sees_only_the_converted_photo(core, photo)
    assert safe_files.original_of(photo_file).read_bytes() == photo


@pytest.mark.parametrize("relay_settings", [{"SANITISE_IN": "relay"}])
def test_with_sanitise_in_relay_only_the_converted_form_and_the_quarantine_cross(
    relay, core, fake_line
):
    photo = _send_photo_and_page(relay, fake_line)
    with relay.context():
        assert line_transfer.relay_task() == 2
        rows = {r.message_id: r for r in db.session.scalars(sa.select(LineRelayContent))}
        assert rows["zp1"].outcome["converted"] and not rows["zf1"].outcome["converted"]
        # The relay kept no original: only the pages it made anew.
        assert all(photo != p.read_bytes() for p in relay_files(relay))
    assert core_round().pulled == 1
    assert relay_files(relay) == []

    # Nothing left for the core to convert: the outcomes came with the files.
    db.session.remove()
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(SafeFile)
            .where(SafeFile.status == SafeFileStatus.PENDING)
        )
        == 0
    )
    _photo, html_file = _check_staff_sees_only_the_converted_photo(core, photo)
    # The original never crossed into LGWAN, neither of the photo nor of the quarantined page.
    data = Path(core.config["MADOGUCHI"]["DATA_DIR"])
    assert not any(p.is_file() and p.read_bytes() in (photo, files.html()) for p in data.rglob("*"))
    assert not safe_files.original_of(html_file).exists()
    assert "中継サーバーで判定" in (html_file.reason or "")


def test_media_the_relay_could_not_fetch_crosses_with_its_reason(relay, core, fake_line):
    # LINE no longer has the content (it keeps it for a limited time): the relay's 404 is
    # final, and the body crosses with the reason.
    body = body_of(_media_event("gone1", contentProvider={"type": "line"}))
    assert send_body(relay, body).status_code == 200
    with relay.context():
        line_transfer.relay_task()
        assert db.session.scalar(sa.select(LineRelayContent)).status == MediaStatus.FAILED
    assert core_round().pulled == 1
    [media] = db.session.scalars(sa.select(LineMedia)).all()
    assert media.status == MediaStatus.FAILED
    assert "LINEから取得できませんでした" in media.last_error
    with relay.context():
        assert count(LineRelayContent) == 0
