"""Sessions from a branch office (支所からのオンライン相談) over HTTP: the administrator's
branch offices, a branch account, the citizen's booking in Japanese and English, the branch's
own page (its bookings only, with the meeting link, audited) and the desk's day view."""

from __future__ import annotations

from datetime import datetime, time

import sqlalchemy as sa

from channels.booking.models import Booking, Mode
from consult.extensions import db
from consult.models import AuditEvent, BranchOffice, OutboxMessage, Staff
from consult.settings import override as override_settings
from consult.timeutil import TOKYO
from tests.helpers import sign_in

from .helpers import form_data
from .test_specialist import weekday_ahead

MEETING = "https://meet.example.jp/madoguchi/{code}"


def _offices(app, admin_client) -> tuple[BranchOffice, BranchOffice]:
    override_settings(app, BOOKING_BRANCH_MEETING_URL=MEETING)
    for name, name_en, address in (
        ("菊間支所", "Kikuma Branch", "今治市菊間町浜1"),
        ("波方支所", "Namikata Branch", "今治市波方町樋口2"),
    ):
        response = admin_client.post(
            "/booking/admin/branches",
            data={"name": name, "name_en": name_en, "address": address, "active": "y"},
        )
        assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    kikuma = db.session.scalar(sa.select(BranchOffice).where(BranchOffice.name == "菊間支所"))
    namikata = db.session.scalar(sa.select(BranchOffice).where(BranchOffice.name == "波方支所"))
    return kikuma, namikata


def _book(client, start: datetime, office: BranchOffice, lang: str = "ja", **overrides):
    data = form_data(start, mode="branch_video", branch=str(office.id), **overrides)
    return client.post(f"/booking/details?lang={lang}", data=data)


def test_admin_manages_branch_offices_and_refuses_bad_input(app, make_staff):
    admin = sign_in(app.test_client(), make_staff("admin"))
    kikuma, _ = _offices(app, admin)
    page = admin.get("/booking/admin/branches").get_data(as_text=True)
    assert "菊間支所" in page and "今治市菊間町浜1" in page and "受付中" in page
    before = db.session.scalar(sa.select(sa.func.count(BranchOffice.id)))
    for bad, message in (
        ({"name": ""}, "支所名を入力してください"),
        ({"name": "菊間支所"}, "支所名「菊間支所」は既に登録されています。"),
        ({"name": "x" * 81}, "支所名は80文字以内で入力してください"),
    ):
        response = admin.post("/booking/admin/branches", data={"address": "住所", **bad})
        assert response.status_code == 422
        text = response.get_data(as_text=True)
        assert message in text, message
        assert "住所" in text  # what was typed stays
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(BranchOffice.id))) == before
    # Closing an office: it is no longer offered.
    closed = admin.post(
        f"/booking/admin/branches/{kikuma.id}",
        data={"name": "菊間支所", "name_en": "Kikuma Branch", "address": "今治市菊間町浜1"},
    )
    assert closed.status_code == 302
    db.session.expire_all()
    assert db.session.get(BranchOffice, kikuma.id).active is False
    assert "菊間支所" not in app.test_client().get("/booking/").get_data(as_text=True)


def test_branch_account_needs_its_office(app, make_staff):
    admin = sign_in(app.test_client(), make_staff("admin"))
    kikuma, _ = _offices(app, admin)
    base = {
        "login": "kikuma1",
        "full_name": "菊間支所端末",
        "display_name": "きくま / Kikuma",
        "role": "branch",
        "password": "a-long-password-1",
        "department_id": "",
        "email": "",
    }
    refused = admin.post("/admin/staff/new", data={**base, "branch_office_id": ""})
    assert refused.status_code == 422
    assert "役割「支所」のアカウントには支所を指定してください。" in refused.get_data(as_text=True)
    other_role = admin.post(
        "/admin/staff/new", data={**base, "role": "consultant", "branch_office_id": kikuma.id}
    )
    assert other_role.status_code == 422
    assert "支所を指定できるのは役割「支所」のアカウントだけです。" in other_role.get_data(
        as_text=True
    )
    made = admin.post("/admin/staff/new", data={**base, "branch_office_id": kikuma.id})
    assert made.status_code == 302
    account = db.session.scalar(sa.select(Staff).where(Staff.login == "kikuma1"))
    assert account.branch_office_id == kikuma.id


def test_citizen_books_a_branch_session_and_only_that_branch_sees_it(app, client, make_staff):
    admin = sign_in(app.test_client(), make_staff("admin"))
    kikuma, namikata = _offices(app, admin)
    day = weekday_ahead(1)
    start = datetime.combine(day, time(10, 0), TOKYO)

    index = client.get("/booking/").get_data(as_text=True)
    assert "支所からのオンライン相談" in index and "菊間支所" in index and "波方支所" in index
    slots = client.get(f"/booking/slots?mode=branch_video&branch={kikuma.id}&week=0")
    assert "菊間支所" in slots.get_data(as_text=True)
    assert f"branch={kikuma.id}" in slots.get_data(as_text=True)
    # Without a branch office, or with a made-up one: back to the start with a message.
    for branch in ("", "999999", "abc"):
        missing = client.get(f"/booking/slots?mode=branch_video&branch={branch}")
        assert missing.status_code == 302
    response = _book(client, start, kikuma)
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    booking = db.session.scalar(sa.select(Booking))
    assert booking.mode is Mode.BRANCH_VIDEO and booking.branch_office_id == kikuma.id
    assert booking.video_url.startswith("https://meet.example.jp/madoguchi/")
    manage = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "菊間支所" in manage and "今治市菊間町浜1" in manage and "お越しください" in manage
    assert booking.video_url not in manage  # the link is the branch's, not the citizen's
    mail = db.session.scalar(sa.select(OutboxMessage))
    assert "菊間支所" in mail.body and booking.video_url not in mail.body
    # Another booking at the other branch, at another time.
    other_start = datetime.combine(day, time(11, 0), TOKYO)
    assert _book(client, other_start, namikata, email="b@example.jp").status_code == 303
    other = db.session.scalar(sa.select(Booking).where(Booking.branch_office_id == namikata.id))

    kikuma_account = sign_in(app.test_client(), make_staff("branch", branch_office=kikuma))
    home = kikuma_account.get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/booking/branch")
    page = kikuma_account.get("/booking/branch").get_data(as_text=True)
    assert booking.reference in page and "山田 花子" in page and booking.video_url in page
    assert "ビデオ相談を開く" in page and "10:00" in page
    assert other.reference not in page and other.video_url not in page
    # The least the session needs: no content, contacts, or other branches.
    assert "介護保険" not in page and "839" not in page and "hanako@example.jp" not in page
    assert "波方支所" not in page
    assert db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.object_type == "booking", AuditEvent.detail == "支所の予約一覧")
    )
    # Nothing else: the desk's day view, the booking itself, tickets, FAQ.
    for path in (
        f"/booking/staff/day?date={day.isoformat()}",
        f"/booking/staff/b/{booking.id}",
        "/tickets",
        "/staff/faq",
    ):
        assert kikuma_account.get(path).status_code == 403, path

    namikata_account = sign_in(app.test_client(), make_staff("branch", branch_office=namikata))
    theirs = namikata_account.get("/booking/branch").get_data(as_text=True)
    assert other.reference in theirs and booking.reference not in theirs

    # The desk sees both in the day view, each with its branch named.
    desk = sign_in(app.test_client(), make_staff("consultant"))
    day_view = desk.get(f"/booking/staff/day?date={day.isoformat()}").get_data(as_text=True)
    assert "支所からのオンライン相談" in day_view
    assert "菊間支所" in day_view and "波方支所" in day_view
    detail = desk.get(f"/booking/staff/b/{booking.id}").get_data(as_text=True)
    assert "菊間支所" in detail and booking.video_url in detail
    # Saving the details keeps the branch's link.
    saved = desk.post(
        f"/booking/staff/b/{booking.id}",
        data={"video_url": "", "staff_id": "", "version": str(booking.sequence)},
    )
    assert saved.status_code in (200, 302)
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).video_url.startswith("https://meet.example.jp/")
    # When the session starts the desk checks the citizen in: a ticket, as for a video session.
    checked = desk.post(f"/booking/staff/b/{booking.id}/check-in")
    assert checked.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).ticket_id is not None
    after = kikuma_account.get("/booking/branch").get_data(as_text=True)
    assert "来所・受付済" in after and booking.video_url in after  # the branch may reopen it


def test_english_booking_and_refusals(app, client, make_staff):
    admin = sign_in(app.test_client(), make_staff("admin"))
    kikuma, _ = _offices(app, admin)
    start = datetime.combine(weekday_ahead(2), time(10, 0), TOKYO)
    index = client.get("/booking/?lang=en").get_data(as_text=True)
    assert "Video session from a branch office" in index and "Kikuma Branch" in index
    made_up = client.post(
        "/booking/details?lang=en",
        data=form_data(start, mode="branch_video", branch="999999"),
    )
    assert made_up.status_code == 404
    assert "not taking bookings" in made_up.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == 0
    booked = _book(client, start, kikuma, lang="en")
    assert booked.status_code == 303
    manage = client.get(booked.headers["Location"] + "&lang=en").get_data(as_text=True)
    assert "Kikuma Branch" in manage and "please come to Kikuma Branch" in manage
    # Without the meeting link template the mode is not offered, nor bookable.
    override_settings(app, BOOKING_BRANCH_MEETING_URL="")
    assert "branch_video" not in client.get("/booking/").get_data(as_text=True)
    refused = _book(client, start.replace(hour=11), kikuma, email="c@example.jp")
    assert refused.status_code == 422
    assert "支所からのオンライン相談は現在受け付けていません。" in refused.get_data(as_text=True)


def test_booking_changes_reach_the_desk_and_only_their_own_branch(app, client, make_staff):
    from consult.live.models import LiveEvent
    from consult.live.services import Viewer

    admin = sign_in(app.test_client(), make_staff("admin"))
    kikuma, namikata = _offices(app, admin)
    start = datetime.combine(weekday_ahead(1), time(10, 0), TOKYO)
    assert _book(client, start, kikuma).status_code == 303
    booking = db.session.scalar(sa.select(Booking))
    desk = sign_in(app.test_client(), make_staff("consultant"))
    assert desk.post(f"/booking/staff/b/{booking.id}/cancel").status_code == 302
    events = list(
        db.session.scalars(
            sa.select(LiveEvent).where(LiveEvent.kind == "booking.changed").order_by(LiveEvent.id)
        )
    )
    assert [e.payload["action"] for e in events] == ["created", "cancelled"]
    for event in events:
        assert event.payload == {
            "booking_id": booking.id,
            "day": start.date().isoformat(),
            "action": event.payload["action"],
        }
        assert sorted(event.audience) == [f"branch:{kikuma.id}", "desk"]
    audience = events[0].audience
    own = make_staff("branch", branch_office=kikuma)
    other = make_staff("branch", branch_office=namikata)
    assert Viewer.of(own).may_receive(audience)
    assert Viewer.of(make_staff("consultant")).may_receive(audience)
    assert not Viewer.of(other).may_receive(audience)
    assert not Viewer.of(make_staff("officer")).may_receive(audience)
    # A booking at the centre itself is the desk's only.
    assert not Viewer.of(own).may_receive(["desk"])
