"""無害化: every file from a citizen (or attached by staff) is converted or quarantined before a
staff page shows it, and the original is never served to a staff browser.

The files are written by the tests themselves (tests/sanitise_files.py); the conversion runs as
the worker runs it (safe_files.convert_due), with the real Pillow, poppler and LibreOffice.
"""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from PIL import Image

from consult.extensions import db
from consult.models import AuditEvent, SafeFile, SafeFileStatus
from consult.services import safe_files, sanitise
from tests import sanitise_files as files
from tests.helpers import csrf_token_from, sign_in


def _convert() -> None:
    """What the worker's sanitise lane does, until nothing waits."""
    db.session.commit()
    while safe_files.convert_due(limit=10):
        pass
    db.session.expire_all()


def _mail(name: str, data: bytes, content_type: str = "application/octet-stream"):
    """A citizen's mail with one attachment, taken in as `mail ingest` does."""
    from channels.email import tasks as email_tasks

    raw = (
        "From: 市民 <citizen@example.jp>\r\nSubject: 書類を送ります\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.jp>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n添付します\r\n--b\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Disposition: attachment; filename*=UTF-8''{quote(name)}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).decode("ascii")
        + "\r\n--b--\r\n"
    ).encode()
    outcome = email_tasks.ingest(raw)
    db.session.commit()
    row = db.session.scalar(sa.select(SafeFile).where(SafeFile.ticket_id == outcome.ticket.id))
    assert row is not None and row.status == SafeFileStatus.PENDING
    return outcome.ticket, row


def _upload(client, number: str, name: str, data: bytes):
    return client.post(
        f"/tickets/{number}/attachments",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _never_the_original(client, row: SafeFile, original: bytes, ticket_number: str) -> list:
    """Every staff route that could show the file: none carries the original's bytes."""
    urls = [
        f"/tickets/{ticket_number}",
        f"/files/{row.id}",
        f"/files/{row.id}/text",
        f"/files/{row.id}/original",
        *(f"/files/{row.id}/pages/{n}" for n in range(1, max(row.pages, 1) + 2)),
    ]
    if row.source == "email_attachment":
        urls.append(f"/email/attachments/{row.source_id}")
    if row.source == "attachment":
        urls.append(f"/tickets/{ticket_number}/attachments/{row.source_id}")
    responses = []
    for url in urls:
        response = client.get(url)
        body = response.get_data()
        assert original not in body, url
        assert original[:64] not in body, url
        assert response.mimetype != "application/pdf", url
        if response.status_code == 200 and response.mimetype == "text/html":
            assert "<script>fetch" not in response.get_data(as_text=True)
        responses.append((url, response.status_code, response.mimetype))
    assert client.get(f"/files/{row.id}/original").status_code == 404
    return responses


# --- images -------------------------------------------------------------------------------------


def test_a_photo_with_gps_is_made_anew_without_its_metadata(app, client, login_as, make_ticket):
    consultant = login_as("consultant")
    ticket = make_ticket()
    photo = files.jpeg_with_gps()
    assert b"SecretPhone" in photo and Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)
    assert _upload(client, ticket.number, "自宅前の写真.jpg", photo).status_code == 302
    row = db.session.scalar(sa.select(SafeFile).where(SafeFile.ticket_id == ticket.id))

    # Until the worker has converted it, staff see that it is being made safe, and no file.
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "安全な形式に変換中" in page
    viewer = client.get(f"/files/{row.id}")
    assert viewer.status_code == 200 and "安全な形式に変換中です" in viewer.get_data(as_text=True)
    assert client.get(f"/files/{row.id}/pages/1").status_code == 404

    _convert()
    row = db.session.get(SafeFile, row.id)
    assert row.status == SafeFileStatus.READY and row.pages == 1 and row.kind == "jpeg"
    html = client.get(f"/files/{row.id}").get_data(as_text=True)
    assert f'src="/files/{row.id}/pages/1"' in html and "位置情報" in html
    response = client.get(f"/files/{row.id}/pages/1")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    converted = Image.open(io.BytesIO(response.data))
    assert converted.size == (320, 240)
    assert not converted.getexif(), "no EXIF at all: no GPS, no camera model"
    assert b"Exif" not in response.data and b"SecretPhone" not in response.data
    assert response.data != photo
    # The old download link leads to the converted form.
    old = client.get(f"/tickets/{ticket.number}/attachments/{row.source_id}")
    assert old.status_code == 302 and old.headers["Location"].endswith(f"/files/{row.id}")
    _never_the_original(client, row, photo, ticket.number)
    viewed = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.object_type == "safe_file", AuditEvent.staff_id == consultant.id
        )
    ).all()
    assert viewed and all(e.detail.startswith(f"ticket={ticket.number}") for e in viewed)
    assert all("自宅" not in (e.detail or "") for e in viewed)


def test_an_image_bomb_is_quarantined_before_its_pixels_are_decoded(app, client, login_as):
    login_as("consultant")
    ticket, row = _mail("photo.png", files.png_bomb(), "image/png")
    _convert()
    row = db.session.get(SafeFile, row.id)
    assert row.status == SafeFileStatus.QUARANTINED
    assert "圧縮爆弾" in row.reason
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "隔離中" in page and "圧縮爆弾" in page


# --- documents ------------------------------------------------------------------------------


def test_a_pdf_with_javascript_becomes_page_images_and_text_never_the_pdf(app, client, login_as):
    login_as("consultant")
    original = files.pdf(pages=2, text="Kokuho application form", javascript=True)
    assert b"/JavaScript" in original
    ticket, row = _mail("申請書.pdf", original, "application/pdf")
    _convert()
    row = db.session.get(SafeFile, row.id)
    assert row.status == SafeFileStatus.READY, row.reason
    assert (row.pages, row.total_pages, row.truncated) == (2, 2, False)
    assert "Kokuho application form page 2" in row.text

    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert f"/files/{row.id}" in page and "変換済み" in page
    viewer = client.get(f"/files/{row.id}").get_data(as_text=True)
    assert viewer.count(f'src="/files/{row.id}/pages/') == 2
    for number in (1, 2):
        image = client.get(f"/files/{row.id}/pages/{number}")
        assert image.mimetype == "image/png" and image.data.startswith(b"\x89PNG\r\n\x1a\n")
        assert b"JavaScript" not in image.data
    text = client.get(f"/files/{row.id}/text")
    assert text.mimetype == "text/plain" and "Kokuho application form" in text.text
    assert text.headers["Content-Disposition"].startswith("attachment;")
    old = client.get(f"/email/attachments/{row.source_id}")
    assert old.status_code == 302 and old.headers["Location"].endswith(f"/files/{row.id}")
    seen = _never_the_original(client, row, original, ticket.number)
    assert all(mimetype != "application/pdf" for _url, _status, mimetype in seen)

    # The extracted text finds the case.
    results = client.post("/tickets/search", data={"q": "application form"})
    assert ticket.number in results.get_data(as_text=True)


def test_a_500_page_pdf_is_converted_up_to_the_page_limit_and_says_so(app, client, login_as):
    login_as("consultant")
    original = files.pdf(pages=500)
    _ticket, row = _mail("資料.pdf", original, "application/pdf")
    _convert()
    row = db.session.get(SafeFile, row.id)
    assert row.status == SafeFileStatus.READY
    assert (row.pages, row.total_pages, row.truncated) == (50, 500, True)
    assert "page 50" in row.text and "page 51" not in row.text
    viewer = client.get(f"/files/{row.id}").get_data(as_text=True)
    assert "全500ページのうち最初の50ページのみ変換しました" in viewer
    assert client.get(f"/files/{row.id}/pages/50").status_code == 200
    assert client.get(f"/files/{row.id}/pages/51").status_code == 404


def test_a_word_document_goes_through_libreoffice_and_one_with_a_macro_is_held(
    app, client, login_as
):
    login_as("consultant")
    _ticket, plain = _mail("申請書.docx", files.docx("国民健康保険の申請書の下書き"))
    ticket, macro = _mail("申請書.docx", files.docx(macro=True))
    _convert()
    plain = db.session.get(SafeFile, plain.id)
    assert plain.status == SafeFileStatus.READY, plain.reason
    assert plain.kind == "docx" and plain.pages == 1
    assert "国民健康保険の申請書の下書き" in plain.text
    image = client.get(f"/files/{plain.id}/pages/1")
    assert image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")

    macro = db.session.get(SafeFile, macro.id)
    assert macro.status == SafeFileStatus.QUARANTINED
    assert "マクロ" in macro.reason
    viewer = client.get(f"/files/{macro.id}").get_data(as_text=True)
    assert "このファイルは隔離されています" in viewer and "マクロ（VBA）を含む" in viewer
    _never_the_original(client, macro, files.docx(macro=True), ticket.number)


# --- what is never converted ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "content_type", "reason"),
    [
        ("請求書.html", files.html(), "text/html", "HTMLファイル"),
        ("書類一式.zip", files.zip_bomb(), "application/zip", "圧縮爆弾の疑い"),
        (
            "写真.jpg",
            files.pdf(),
            "image/jpeg",
            "ファイル名の拡張子（.jpg）と中身（PDF）が一致しない",
        ),
        (
            "書類.pdf",
            files.png(),
            "application/octet-stream",
            "（.pdf）と中身（PNG画像）が一致しない",
        ),
        ("scan.pdf", b"%PDF-1.4\nbroken beyond repair", "application/pdf", "PDFの読み取り"),
    ],
    ids=["html", "zip-bomb", "name-and-type-disagree", "png-called-pdf", "broken-pdf"],
)
def test_what_cannot_be_converted_is_quarantined_with_its_reason(
    app, client, login_as, name, data, content_type, reason
):
    login_as("consultant")
    ticket, row = _mail(name, data, content_type)
    _convert()
    row = db.session.get(SafeFile, row.id)
    assert row.status == SafeFileStatus.QUARANTINED
    assert reason in row.reason
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "隔離中" in page and reason in page
    assert not list((Path(app.config["MADOGUCHI"]["DATA_DIR"]) / "safe").rglob("*.png"))
    _never_the_original(client, row, data, ticket.number)


def test_each_step_is_bounded_in_time_and_memory(tmp_path):
    """A step that runs too long or wants too much memory ends, and the file is quarantined."""
    long_pdf = tmp_path / "long.pdf"
    long_pdf.write_bytes(files.pdf(pages=500))
    slow = sanitise.convert(
        long_pdf, tmp_path / "out1", limits=sanitise.Limits(timeout_seconds=0.3)
    )
    assert not slow.converted and "制限時間（0.3秒）" in slow.reason
    assert not list((tmp_path / "out1").iterdir())

    document = tmp_path / "a.docx"
    document.write_bytes(files.docx())
    starved = sanitise.convert(
        document, tmp_path / "out2", filename="a.docx", limits=sanitise.Limits(memory_mb=64)
    )
    assert not starved.converted and "隔離しました" in starved.reason

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(files.jpeg_with_gps(width=2000, height=2000))
    small = sanitise.convert(photo, tmp_path / "out3", limits=sanitise.Limits(max_pixels=1_000_000))
    assert not small.converted and "圧縮爆弾" in small.reason


# --- release by an administrator ---------------------------------------------------------------


def test_only_an_administrator_releases_a_file_with_a_reason_and_it_is_audited(app, make_staff):
    original = files.html()
    ticket, row = _mail("請求書.html", original, "text/html")
    _convert()
    consultant = sign_in(app, make_staff("consultant"))
    supervisor = sign_in(app, make_staff("supervisor"))
    admin_staff = make_staff("admin")
    admin = sign_in(app, admin_staff)
    for outsider in (consultant, supervisor):
        assert outsider.get("/admin/quarantine").status_code == 403
        assert outsider.get(f"/admin/quarantine/{row.id}").status_code == 403
        assert (
            outsider.post(f"/admin/quarantine/{row.id}", data={"reason": "確認済みです"})
        ).status_code == 403
    assert consultant.get(f"/files/{row.id}/original").status_code == 404

    listing = admin.get("/admin/quarantine").get_data(as_text=True)
    assert ticket.number in listing and "HTMLファイル" in listing
    form = admin.get(f"/admin/quarantine/{row.id}").get_data(as_text=True)
    assert 'name="csrf_token"' in form and 'name="reason"' in form
    refused = admin.post(f"/admin/quarantine/{row.id}", data={"reason": ""})
    assert refused.status_code == 422
    assert "解除する理由を入力してください" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(SafeFile, row.id).status == SafeFileStatus.QUARANTINED
    # Administrators do not open citizens' files themselves: the desk does, after the release.
    assert admin.get(f"/files/{row.id}").status_code == 403

    done = admin.post(
        f"/admin/quarantine/{row.id}", data={"reason": "相談者に電話で確認し、検査済み"}
    )
    assert done.status_code == 302
    db.session.expire_all()
    released = db.session.get(SafeFile, row.id)
    assert released.status == SafeFileStatus.RELEASED
    assert released.released_by_id == admin_staff.id
    assert released.release_reason == "相談者に電話で確認し、検査済み"
    [event] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "release")).all()
    assert (event.staff_id, event.object_type, event.object_id) == (
        admin_staff.id,
        "safe_file",
        str(row.id),
    )
    assert event.detail == f"ticket={ticket.number}"
    again = admin.post(f"/admin/quarantine/{row.id}", data={"reason": "もう一度解除する"})
    assert again.status_code in (200, 422)

    # Now the desk may download the original: as a file, never as a page.
    viewer = consultant.get(f"/files/{row.id}").get_data(as_text=True)
    assert "管理者が隔離を解除しました" in viewer
    download = consultant.get(f"/files/{row.id}/original")
    assert download.status_code == 200 and download.data == original
    assert download.mimetype == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    db.session.expire_all()
    assert db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "export",
            AuditEvent.object_type == "safe_file",
            AuditEvent.detail == f"ticket={ticket.number} original",
        )
    )


def test_the_release_form_needs_its_csrf_token(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        _ticket, row = _mail("a.html", files.html(), "text/html")
        _convert()
        from consult.services import staff as staff_service
        from tests.helpers import PASSWORD

        staff = staff_service.create_staff(
            None,
            login="csrf-admin",
            full_name="管理 太郎",
            display_name="かんり / Kanri",
            role="admin",
            password=PASSWORD,
        )
        db.session.commit()
        admin = sign_in(app, staff, csrf=True)
        without = admin.post(f"/admin/quarantine/{row.id}", data={"reason": "確認しました"})
        assert without.status_code == 400
        db.session.expire_all()
        assert db.session.get(SafeFile, row.id).status == SafeFileStatus.QUARANTINED
        token = csrf_token_from(admin.get(f"/admin/quarantine/{row.id}").get_data(as_text=True))
        done = admin.post(
            f"/admin/quarantine/{row.id}", data={"reason": "確認しました", "csrf_token": token}
        )
        assert done.status_code == 302
        db.session.expire_all()
        assert db.session.get(SafeFile, row.id).status == SafeFileStatus.RELEASED
        db.session.remove()


def test_files_are_for_those_who_may_see_the_ticket(app, make_staff):
    _ticket, row = _mail("申請書.pdf", files.pdf(), "application/pdf")
    _convert()
    for role in ("officer", "support", "admin"):
        outsider = sign_in(app, make_staff(role))
        for url in (f"/files/{row.id}", f"/files/{row.id}/pages/1", f"/files/{row.id}/text"):
            assert outsider.get(url).status_code == 403, (role, url)
    desk = sign_in(app, make_staff("consultant"))
    assert desk.get(f"/files/{row.id + 999}").status_code == 404
    assert desk.get(f"/files/{row.id}/pages/1").status_code == 200
    anonymous = app.test_client().get(f"/files/{row.id}")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
