"""無害化 of what citizens send on LINE: a photo with its GPS position arrives through the fake
Messaging API, is fetched by the worker, and staff see only the image made anew."""

from __future__ import annotations

import io

import sqlalchemy as sa
from PIL import Image

from channels.line.models import LineMedia
from consult.extensions import db
from consult.models import SafeFile, SafeFileStatus, Ticket
from consult.services import safe_files
from tests import sanitise_files as files
from tests.channels.line.conftest import body_of, new_staff, post_webhook, run_worker, text_event
from tests.channels.line.test_processing import OPEN
from tests.helpers import sign_in


def _media_event(message_id: str, kind: str = "image", **fields) -> dict:
    event = text_event("x", at=OPEN)
    event["message"] = {"type": kind, "id": message_id, "quoteToken": "q", **fields}
    return event


def test_a_line_photo_is_shown_only_as_an_image_made_anew(line_client, line_app, fake_line):
    photo = files.jpeg_with_gps()
    fake_line.content["p1"] = (photo, "image/jpeg")
    fake_line.content["f1"] = (files.html(), "text/html")
    post_webhook(
        line_client,
        body_of(
            _media_event("p1", contentProvider={"type": "line"}),
            _media_event("f1", "file", fileName="お知らせ.html", fileSize=100),
        ),
    )
    run_worker(line_app)
    media = {m.message_id: m for m in db.session.scalars(sa.select(LineMedia))}
    safe = safe_files.for_source("line_media", [m.id for m in media.values()])
    photo_file, html_file = safe[media["p1"].id], safe[media["f1"].id]
    photo_id, html_id = photo_file.id, html_file.id
    number = db.session.get(Ticket, photo_file.ticket_id).number
    desk = line_app.test_client()
    sign_in(desk, new_staff())

    page = desk.get(f"/tickets/{number}").get_data(as_text=True)
    assert page.count("安全な形式に変換中") == 2
    assert (
        desk.get(f"/channels/line/media/{media['p1'].id}")
        .headers["Location"]
        .endswith(f"/files/{photo_id}")
    )

    safe_files.convert_due(limit=10)
    db.session.remove()
    assert db.session.get(SafeFile, photo_id).status == SafeFileStatus.READY
    assert db.session.get(SafeFile, html_id).status == SafeFileStatus.QUARANTINED
    page = desk.get(f"/tickets/{number}").get_data(as_text=True)
    assert "変換済み" in page and "隔離中" in page and "HTMLファイル" in page
    image = desk.get(f"/files/{photo_id}/pages/1")
    assert image.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(image.data)).getexif()
    assert b"SecretPhone" not in image.data and photo not in image.data
    for url in (f"/files/{html_id}", f"/files/{html_id}/original"):
        assert b"<script>" not in desk.get(url).data
