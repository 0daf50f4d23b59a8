"""The basics of a consultant's day: attachments, passwords, the served address, ownership by
the first reply and handover, and the 今日 page."""

from __future__ import annotations

import io
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from channels.email import tasks as email_tasks
from consult import urls
from consult.extensions import db
from consult.live.models import LiveEvent
from consult.live.services import Viewer
from consult.models import (
    Attachment,
    AuditEvent,
    Channel,
    EntryKind,
    Staff,
    Ticket,
)
from consult.services import attachments, callbacks, tickets
from consult.services.actor import Actor
from consult.settings import override
from consult.timeutil import utcnow
from tests.channels.test_email_channel import citizen_mail
from tests.helpers import PASSWORD, csrf_token_from, sign_in

ROOT = Path(__file__).resolve().parents[2]
# The 今日 page (cases without citizens or categories, so their IN-loads are skipped): the
# session with its staff (one query), the live cursor, my cases, callbacks (+tickets, +staff,
# +assignees), bookings, handoffs, consumer alerts; SQLite adds its BEGIN IMMEDIATE.
# + the protected persons' strings this reader may not see (the response scrubber).
TODAY_QUERIES = {"sqlite": 12, "postgresql": 11}

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


@pytest.fixture
def consultant(login_as):
    return login_as("consultant", full_name="窓口 花子")


def _upload(client, number, name, data):
    return client.post(
        f"/tickets/{number}/attachments",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _attachments(ticket) -> list[Attachment]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)))


def _audits(action, object_type="attachment") -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.object_type == object_type
            )
        )
    )


# --- attachments -------------------------------------------------------------------------------


def test_a_photo_and_a_pdf_are_stored_under_the_data_folder_and_shown_on_the_timeline(
    app, client, consultant, make_ticket
):
    ticket = make_ticket()
    assert _upload(client, ticket.number, "保険証の写真.JPG", JPEG).status_code == 302
    assert _upload(client, ticket.number, "申請書.pdf", PDF).status_code == 302
    stored = _attachments(ticket)
    assert [(a.filename, a.content_type, a.size) for a in stored] == [
        ("保険証の写真.JPG", "image/jpeg", len(JPEG)),
        ("申請書.pdf", "application/pdf", len(PDF)),
    ]
    data_dir = Path(app.config["MADOGUCHI"]["DATA_DIR"])
    for item in stored:
        path = attachments.path_of(item)
        assert data_dir in path.parents and "static" not in path.parts
        assert item.filename not in str(path)  # a generated name, never the sender's
        assert path.stat().st_mode & 0o077 == 0
    assert path.read_bytes() == PDF
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "ファイルを添付しました：保険証の写真.JPG" in page
    assert "「申請書.pdf」を表示" in page
    assert f"/tickets/{ticket.number}/attachments/{stored[1].id}" in page
    # Shown only once made harmless (tests/consult/test_sanitise.py): until then, the panel says so.
    assert page.count("安全な形式に変換中") == 2


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("page.html", HTML, "添付できない種類のファイル"),
        ("申請書.pdf", HTML, "添付できない種類のファイル"),  # the name lies: the content decides
        ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "添付できない"),
        ("run.exe", b"MZ\x90\x00" + b"\x00" * 100, "添付できない種類のファイル"),
        ("photo.pdf", JPEG, "拡張子と中身（JPEG画像）が一致しません"),
        ("empty.pdf", b"", "空のファイルです"),
    ],
)
def test_files_of_other_types_are_refused_with_a_japanese_message(
    client, consultant, make_ticket, name, data, message
):
    ticket = make_ticket()
    response = _upload(client, ticket.number, name, data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _attachments(ticket) == []
    assert not any(e.data.get("attachment_id") for e in ticket.timeline)


def test_a_file_over_the_limit_is_refused_and_a_huge_body_gets_413(
    app, client, consultant, make_ticket
):
    override(app, ATTACHMENT_MAX_BYTES=1000)
    ticket = make_ticket()
    response = _upload(client, ticket.number, "大きい写真.png", PNG + b"\x00" * 1000)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "添付できる大きさ（1 KBまで）を超えています" in page
    # Far beyond the limit the body is not even read.
    huge = _upload(client, ticket.number, "huge.png", PNG + b"\x00" * 200_000)
    assert huge.status_code == 413
    assert _attachments(ticket) == []
    assert _upload(client, ticket.number, "小さい写真.png", PNG).status_code == 302


def test_a_photo_larger_than_other_forms_take_passes_the_csrf_check(app_factory, make_staff):
    """A 5 MB photo: over the app's 2 MB body limit, under the attachments' 10 MB. With CSRF
    on, the form is parsed before the view runs, under the attachment's own limit."""
    protected = app_factory(WTF_CSRF_ENABLED=True)
    with protected.app_context():
        from consult.services import staff as staff_service

        member = staff_service.create_staff(
            None,
            login="photo-taker",
            full_name="写真 花子",
            display_name="しゃしん / Shashin",
            role="consultant",
            password=PASSWORD,
        )
        ticket = tickets.create_ticket(
            Actor(member, "127.0.0.1"), channel=Channel.COUNTER, subject="書類の写真"
        )
        db.session.commit()
        number = ticket.number
        client = sign_in(protected, "photo-taker", csrf=True)
        page = client.get(f"/tickets/{number}").get_data(as_text=True)
        photo = JPEG + b"\x00" * (5 * 1024 * 1024)
        # Encoded here: the test client would spool a body this large to a temporary file that
        # it never closes (a ResourceWarning, an error in this suite).
        boundary = "madoguchi-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                f"{csrf_token_from(page)}\r\n--{boundary}\r\nContent-Disposition: form-data; "
                f'name="file"; filename="書類.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + photo
            + f"\r\n--{boundary}--\r\n".encode()
        )
        response = client.post(
            f"/tickets/{number}/attachments",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        stored = db.session.scalar(sa.select(Attachment).where(Attachment.filename == "書類.jpg"))
        assert stored.size == len(photo)
        # Other forms keep the app's 2 MB limit.
        big_note = client.post(
            f"/tickets/{number}/note",
            data={"body": "あ" * (1024 * 1024), "csrf_token": csrf_token_from(page)},
        )
        assert big_note.status_code == 413


def test_a_download_is_never_the_stored_file_and_each_view_is_audited(
    client, consultant, make_ticket
):
    from consult.models import SafeFile
    from consult.services import safe_files

    ticket = make_ticket()
    _upload(client, ticket.number, "写真.png", PNG)
    _upload(client, ticket.number, "iPhone.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    png, heic = _attachments(ticket)
    db.session.commit()
    safe_files.convert_due(limit=10)
    db.session.expire_all()
    for item in (png, heic):
        response = client.get(f"/tickets/{ticket.number}/attachments/{item.id}")
        safe = db.session.scalar(
            sa.select(SafeFile).where(
                SafeFile.source == "attachment", SafeFile.source_id == item.id
            )
        )
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/files/{safe.id}")
        viewer = client.get(response.headers["Location"])
        assert viewer.status_code == 200 and viewer.mimetype == "text/html"
        # The stored bytes are HEIC/PNG headers over zeros: neither converts, both are held.
        assert "このファイルは隔離されています" in viewer.get_data(as_text=True)
    views = _audits("view", "safe_file")
    assert len(views) == 2 and all(e.staff_id == consultant.id for e in views)
    assert all(e.detail == f"ticket={ticket.number}" for e in views)
    assert _audits("export") == []
    assert [e.object_id for e in _audits("create")] == [str(png.id), str(heic.id)]


def test_only_those_who_may_see_the_ticket_download_and_another_ticket_number_finds_nothing(
    app, client, consultant, make_ticket, make_staff
):
    ticket = make_ticket()
    other = make_ticket(subject="別の相談")
    _upload(client, ticket.number, "写真.png", PNG)
    (item,) = _attachments(ticket)
    url = f"/tickets/{ticket.number}/attachments/{item.id}"
    assert client.get(f"/tickets/{other.number}/attachments/{item.id}").status_code == 404
    assert client.get(f"/tickets/{ticket.number}/attachments/{item.id + 99}").status_code == 404
    for role in ("officer", "support", "admin"):
        outsider = sign_in(app, make_staff(role))
        assert outsider.get(url).status_code == 403
        assert (
            outsider.post(
                f"/tickets/{ticket.number}/attachments",
                data={"file": (io.BytesIO(PNG), "x.png")},
                content_type="multipart/form-data",
            ).status_code
            == 403
        )
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert len(_audits("export")) == 0
    assert len(_attachments(ticket)) == 1


# --- passwords ---------------------------------------------------------------------------------


def _change(client, current, new, again=None):
    return client.post(
        "/account/password",
        data={
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong-password-1", "brand-new-pass-2026", None, "現在のパスワードが正しくありません"),
        (PASSWORD, "brand-new-pass-2026", "brand-new-pass-2027", "確認のための入力と一致しません"),
        (PASSWORD, "short", None, "パスワードは10文字以上にしてください"),
        (PASSWORD, PASSWORD, None, "現在のパスワードと違うもの"),
    ],
)
def test_a_bad_password_change_says_why_and_changes_nothing(
    client, consultant, current, new, again, message
):
    before = consultant.password_hash
    response = _change(client, current, new, again)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Staff, consultant.id).password_hash == before


def test_staff_change_their_own_password_other_sessions_end_this_one_stays(app, client, consultant):
    elsewhere = sign_in(app, consultant)
    page = client.get("/account/password").get_data(as_text=True)
    assert "現在のパスワード" in page and "確認のためもう一度" in page
    response = _change(client, PASSWORD, "my-own-new-pass-2026")
    assert response.status_code == 302
    assert client.get("/tickets").status_code == 200  # still signed in here
    assert "/login" in elsewhere.get("/tickets").headers["Location"]  # the other device is out
    sign_in(app, consultant, password="my-own-new-pass-2026")
    assert [e.staff_id for e in _audits("password_change", "staff")] == [consultant.id]


def test_a_password_set_by_an_administrator_must_be_changed_first(app, make_staff):
    admin = make_staff("admin")
    member = make_staff("consultant")
    assert member.must_change_password is False  # seeded/created without an administrator
    admin_client = sign_in(app, admin)
    assert (
        admin_client.post(
            f"/admin/staff/{member.id}/password", data={"password": "temporary-pass-01"}
        ).status_code
        == 302
    )
    client = sign_in(app, member, password="temporary-pass-01")
    for path in ("/tickets", "/today", "/counter/new", f"/citizens/{member.id}"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/account/password"
    assert client.post("/tickets/search", data={"q": "x"}).headers["Location"] == (
        "/account/password"
    )
    page = client.get("/account/password").get_data(as_text=True)
    assert "管理者が設定したパスワード" in page
    # What a page loads by itself is not redirected: static files and the live stream.
    with client.get("/static/css/madoguchi.css") as static:
        assert static.status_code == 200
    assert client.get("/alerts/live.json?since=0").status_code == 200  # the help button's feed
    with client.get("/live/stream?poll=1&after=0") as live:
        assert live.status_code == 200, live.headers.get("Location")
        assert live.is_json and live.json.get("ended") is not True
    assert _change(client, "temporary-pass-01", "temporary-pass-01").status_code == 422
    assert _change(client, "temporary-pass-01", "mine-from-now-2026").status_code == 302
    assert client.get("/tickets").status_code == 200
    db.session.expire_all()
    assert db.session.get(Staff, member.id).must_change_password is False


def test_an_account_an_administrator_creates_must_change_its_password(app, make_staff):
    admin_client = sign_in(app, make_staff("admin"))
    response = admin_client.post(
        "/admin/staff/new",
        data={
            "login": "newcomer",
            "full_name": "新人 一郎",
            "display_name": "しんじん / Shinjin",
            "role": "consultant",
            "password": "first-pass-2026",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    client = sign_in(app, "newcomer", password="first-pass-2026")
    assert client.get("/tickets").headers["Location"] == "/account/password"


# --- the served address ------------------------------------------------------------------------


def test_links_follow_the_address_served_unless_public_url_is_set(app_factory):
    app = app_factory()
    with app.app_context():
        assert urls.public_url("faq_public.public_index").startswith("http://127.0.0.1:5000/")
        assert urls.serve_at(app, "127.0.0.1", 5001) == "http://127.0.0.1:5001"
        assert urls.public_url("faq_public.public_index") == "http://127.0.0.1:5001/faq"
        assert app.config["MADOGUCHI"]["PUBLIC_URL"] == "http://127.0.0.1:5001"
    named = app_factory(PUBLIC_URL="https://soudan.example.lg.jp/")
    with named.app_context():
        assert urls.serve_at(named, "127.0.0.1", 5001) == "https://soudan.example.lg.jp"
        assert urls.public_url("faq_public.public_index") == "https://soudan.example.lg.jp/faq"


def test_a_booking_mail_link_follows_the_served_port(app_factory):
    from channels.booking.models import Booking

    app = app_factory()
    with app.app_context():
        urls.serve_at(app, "127.0.0.1", 5001)
        from channels.booking import services as booking_services

        link = booking_services.manage_url(Booking(id=1, reference="ABC123"))
        assert link.startswith("http://127.0.0.1:5001/booking/manage/")


def test_make_run_takes_port_and_host():
    shown = subprocess.run(
        ["make", "-n", "run", "PORT=5001", "HOST=0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "serve --host 0.0.0.0 --port 5001" in shown
    default = subprocess.run(
        ["make", "-n", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "serve --host 127.0.0.1 --port 5000" in default
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run PORT=5001" in readme


# --- ownership: the first reply, and handing over ------------------------------------------------


def test_the_first_email_reply_makes_the_replier_the_owner_and_the_second_changes_nothing(
    app, client, consultant, make_staff
):
    ticket = email_tasks.ingest(citizen_mail()).ticket
    db.session.commit()
    assert ticket.assignee_id is None
    response = client.post(f"/email/tickets/{ticket.number}/reply", data={"body": "承知しました。"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == consultant.id
    colleague = make_staff("consultant")
    other = sign_in(app, colleague)
    assert (
        other.post(f"/email/tickets/{ticket.number}/reply", data={"body": "補足です。"}).status_code
        == 302
    )
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == consultant.id
    taken = [e for e in ticket.timeline if e.kind == EntryKind.ASSIGNMENT]
    assert [(e.author_id, e.data.get("taken")) for e in taken] == [(consultant.id, True)]


def test_a_case_is_handed_to_a_colleague_with_a_note_and_they_are_told_live(
    app, client, consultant, make_staff, make_ticket
):
    colleague = make_staff("consultant", full_name="同僚 次郎")
    ticket = make_ticket(assignee=consultant)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "メモを付けて同僚に引き継ぐ" in page
    response = client.post(
        f"/tickets/{ticket.number}/handover",
        data={"colleague_id": str(colleague.id), "handover_note": "明日10時に折り返しの約束あり"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == colleague.id
    entry = ticket.timeline[-1]
    assert entry.kind == EntryKind.ASSIGNMENT
    assert entry.body == "同僚 次郎さんに引き継ぎました。\n明日10時に折り返しの約束あり"
    assert entry.data["handed_over_from"] == consultant.id
    event = db.session.scalar(sa.select(LiveEvent).where(LiveEvent.kind == "ticket.handed_over"))
    assert event.audience == [f"staff:{colleague.id}"]
    assert Viewer.of(colleague).may_receive(event.audience)
    assert not Viewer.of(consultant).may_receive(event.audience)
    assert event.payload["number"] == ticket.number
    assert "明日" not in str(event.payload)  # the note itself never travels
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "明日10時に折り返しの約束あり" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"handover_note": "メモ"}, "引き継ぐ相手を選んでください"),
        ({"colleague_id": "self", "handover_note": ""}, "引継ぎのメモを入力してください"),
        ({"colleague_id": "officer", "handover_note": "お願いします"}, "選択肢から選んでください"),
    ],
)
def test_a_handover_without_a_colleague_or_a_note_is_refused(
    client, consultant, make_staff, make_ticket, data, message
):
    ticket = make_ticket(assignee=consultant)
    if data.get("colleague_id") == "self":
        data = {**data, "colleague_id": str(make_staff("consultant").id)}
    elif data.get("colleague_id") == "officer":
        data = {**data, "colleague_id": str(make_staff("officer").id)}
    response = client.post(f"/tickets/{ticket.number}/handover", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).assignee_id == consultant.id


# --- 今日 ----------------------------------------------------------------------------------------


def _today_fixture(consultant, make_staff, make_ticket, cases=3):
    other = make_staff("consultant")
    mine = [make_ticket(assignee=consultant, subject=f"自分の相談{i}") for i in range(cases)]
    make_ticket(actor=Actor(other, "127.0.0.1"), assignee=other, subject="同僚の相談")
    now = utcnow()
    actor = Actor(consultant, "127.0.0.1")
    callbacks.schedule(actor, mine[0], now - timedelta(minutes=30))
    callbacks.schedule(actor, mine[1], now + timedelta(minutes=1))
    db.session.commit()
    return mine


def test_today_shows_my_cases_and_callbacks_with_the_overdue_one_highlighted(
    client, consultant, make_staff, make_ticket
):
    mine = _today_fixture(consultant, make_staff, make_ticket)
    page = client.get("/today").get_data(as_text=True)
    assert '<a href="/today" aria-current="page">今日</a>' in page
    for ticket in mine:
        assert ticket.number in page
    assert "同僚の相談" not in page
    assert "期限切れ 1件" in page
    assert page.count('class="is-overdue"') == 1
    assert "今日の予約" in page and "回答を待っている引継ぎ" in page
    # A consultant does not approve FAQ drafts: no such block.
    assert "承認を待つFAQの下書き" not in page


def test_today_lists_drafts_to_review_for_a_supervisor(app, make_staff):
    from faq import services as faq_services

    author = make_staff("consultant")
    entry = faq_services.create_entry(
        Actor(author, "127.0.0.1"), question="粗大ごみの出し方", answer="予約が必要です。"
    )
    faq_services.submit(Actor(author, "127.0.0.1"), entry)
    db.session.commit()
    supervisor = sign_in(app, make_staff("supervisor"))
    page = supervisor.get("/today").get_data(as_text=True)
    assert "承認を待つFAQの下書き" in page and "粗大ごみの出し方" in page


def test_today_costs_the_same_queries_for_three_cases_or_thirty(
    client, backend, consultant, make_staff, make_ticket, count_queries
):
    _today_fixture(consultant, make_staff, make_ticket, cases=3)
    client.get("/today")
    with count_queries() as few:
        assert client.get("/today").status_code == 200
    for i in range(27):
        make_ticket(assignee=consultant, subject=f"追加の相談{i}")
    with count_queries() as many:
        assert client.get("/today").status_code == 200
    assert few.count == many.count, many
    assert many.count == TODAY_QUERIES[backend], many
