"""Mail attachments across the zones: converted in the core (the default), or already in the
relay (MADOGUCHI_SANITISE_IN=relay), where only the converted form and the quarantine's record
cross into LGWAN, never the attachment's bytes."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from channels.email import tasks as mail_tasks
from channels.email import transfer as mail_transfer
from channels.email.models import InboundMail
from consult.extensions import db
from consult.models import Channel, SafeFile, SafeFileStatus, Ticket
from consult.services import safe_files
from tests import sanitise_files as files
from tests.channels.line.conftest import new_staff
from tests.helpers import sign_in
from tests.transfer.test_zones import core_round, count


def mail_with_files(photo: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = "山田 花子 <hanako@example.jp>"
    message["To"] = "soudan@example.lg.jp"
    message["Subject"] = "申請書の写真を送ります"
    message["Message-ID"] = "<zones-files-1@example.jp>"
    message["Date"] = "Tue, 24 Nov 2026 10:00:00 +0900"
    message.set_content("申請書の写真と、案内のページを添付します。")
    message.add_attachment(photo, maintype="image", subtype="jpeg", filename="申請書.jpg")
    # A sender's own relay mark must not make the core take a file it never got.
    message.add_attachment(files.html(), maintype="text", subtype="html", filename="案内.html")
    message.get_payload()[-1]["X-Madoguchi-Relay-File"] = "0"
    return message.as_bytes()


def everything_under(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize(
    "relay_settings", [{}, {"SANITISE_IN": "relay"}], ids=["sanitise-in-core", "sanitise-in-relay"]
)
def test_mail_attachments_are_shown_converted_on_the_core(relay, core, relay_settings):
    in_relay = relay_settings.get("SANITISE_IN") == "relay"
    photo = files.jpeg_with_gps()
    with relay.context():
        mail_tasks.ingest(mail_with_files(photo), source="stdin")
        if in_relay:
            # Not converted yet: it waits on the relay.
            from consult.transfer.services import outgoing

            assert outgoing(100) == []
            db.session.commit()
            assert mail_transfer.relay_convert() == 1
    core_round()
    with relay.context():
        assert count(InboundMail) == 0
    relay_data = Path(relay.app.config["MADOGUCHI"]["DATA_DIR"])
    assert everything_under(relay_data / "relay") == []
    assert not list((relay_data / "raw").rglob("*.eml"))

    mail_tasks.process_pending()
    db.session.commit()
    core_data = Path(core.config["MADOGUCHI"]["DATA_DIR"])
    if in_relay:
        # The attachments' bytes never reached the core: nothing left to convert here.
        assert not any(photo in data or b"<script>" in data for data in everything_under(core_data))
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(SafeFile)
                .where(SafeFile.status == SafeFileStatus.PENDING)
            )
            == 0
        )
    else:
        safe_files.convert_due(limit=10)
        db.session.remove()
    [ticket] = db.session.scalars(sa.select(Ticket).where(Ticket.channel == Channel.EMAIL)).all()
    rows = {row.filename: row for row in db.session.scalars(sa.select(SafeFile))}
    assert rows["申請書.jpg"].status == SafeFileStatus.READY
    assert rows["案内.html"].status == SafeFileStatus.QUARANTINED
    desk = core.test_client()
    sign_in(desk, new_staff())
    page = desk.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "変換済み" in page and "隔離中" in page and "申請書.jpg" in page
    image = desk.get(f"/files/{rows['申請書.jpg'].id}/pages/1")
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(image.data)).getexif()
    assert photo not in image.data
    assert b"<script>" not in desk.get(f"/files/{rows['案内.html'].id}/original").data
