"""Booking across the zones: citizens book on the relay, staff see it at the core; slots the
core fills are full on the relay; the confirmation leaves through the relay."""

from __future__ import annotations

import re

import requests
import sqlalchemy as sa

from channels.booking import services
from channels.booking.models import Booking, BookingStatus, Mode
from consult.extensions import db
from consult.models import OutboxMessage
from consult.services import outbox
from consult.services.actor import SYSTEM
from consult.transfer import client
from consult.transfer.models import TransferItem
from tests.channels.booking.helpers import form_data, set_capacity, slot_in
from tests.channels.line.conftest import new_staff
from tests.helpers import sign_in
from tests.transfer.conftest import settle


def book_on_relay(relay, start, **overrides) -> requests.Response:
    return requests.post(
        relay.url + "/booking/details",
        data=form_data(start, **overrides),
        allow_redirects=False,
        timeout=10,
    )


def core_round():
    db.session.commit()
    report = client.run_round()
    settle()
    db.session.expire_all()
    assert report.link_down is None, report
    return report


def test_a_booking_made_on_the_relay_appears_in_the_cores_day_view(relay, core):
    start = slot_in(7)
    answer = book_on_relay(relay, start)
    assert answer.status_code == 303, answer.text[:1000]
    assert "/booking/manage/" in answer.headers["Location"]
    with relay.context():
        assert db.session.scalar(sa.select(OutboxMessage)) is None  # the relay sends no mail
    core_round()

    booking = db.session.scalar(sa.select(Booking))
    assert (booking.name, booking.email, booking.status) == (
        "山田 花子",
        "hanako@example.jp",
        BookingStatus.BOOKED,
    )
    reference, booking_id = booking.reference, booking.id
    staff = new_staff()
    web = core.test_client()
    sign_in(web, staff)
    day = web.get(f"/booking/staff/day?date={start:%Y-%m-%d}").get_data(as_text=True)
    assert "山田 花子" in day
    db.session.remove()

    with relay.context():
        [kept] = db.session.scalars(sa.select(Booking)).all()
        # The core has it: the relay keeps the reference and the time, not who or why.
        assert (kept.name, kept.kana, kept.email, kept.phone, kept.content) == (
            "",
            "",
            None,
            None,
            "",
        )
        assert kept.reference == reference
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TransferItem)) == 0

    # The confirmation is written on the core and delivered by the relay, with a link that
    # opens the booking on the relay.
    outbox.run_once()
    core_round()
    with relay.context():
        [mail] = db.session.scalars(sa.select(OutboxMessage)).all()
        assert mail.recipient == "hanako@example.jp"
        assert reference in mail.subject
        link = re.search(r"https://yoyaku\.example\.jp(/booking/manage/\S+)", mail.body).group(1)
    page = requests.get(relay.url + link, timeout=10)
    assert page.status_code == 200
    assert reference in page.text
    assert "山田" not in page.text

    # Moved, then cancelled, on the relay: the core follows, and tells the citizen by mail.
    token = link.rsplit("/", 1)[1]
    target = slot_in(8)
    moved = requests.post(
        f"{relay.url}/booking/manage/{token}/move",
        data={"start": f"{target:%Y-%m-%dT%H:%M}"},
        allow_redirects=False,
        timeout=10,
    )
    assert moved.status_code == 303, moved.text[:1000]
    core_round()
    booking = db.session.get(Booking, booking_id)
    assert booking.starts_at == target and booking.sequence == 1
    cancelled = requests.post(
        f"{relay.url}/booking/manage/{token}/cancel", allow_redirects=False, timeout=10
    )
    assert cancelled.status_code in (302, 303), cancelled.text[:1000]
    core_round()
    booking = db.session.get(Booking, booking_id)
    assert booking.status is BookingStatus.CANCELLED
    subjects = [m.subject for m in db.session.scalars(sa.select(OutboxMessage))]
    assert any("変更" in s for s in subjects) and any("取り消" in s for s in subjects)


def test_a_slot_filled_at_the_core_is_full_on_the_relay(relay, core):
    set_capacity(Mode.COUNTER, 1)
    start = slot_in(9)
    services.create_booking(
        SYSTEM,
        services.BookingInput(
            mode="counter",
            starts_at=start,
            name="窓口 次郎",
            kana="まどぐち じろう",
            content="電話で受けた予約",
            phone="0878392111",
        ),
    )
    db.session.commit()
    core_round()  # the core's slot counters and capacity go to the relay

    answer = book_on_relay(relay, start)
    assert answer.status_code == 409
    assert "満席" in answer.text
    with relay.context():
        free = services.free_slots([Mode.COUNTER], start=start.date(), days=1)[Mode.COUNTER]
        assert start not in [slot.starts_at for slot in free]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0

    # Another time of that day is free on the relay; booked there, it is full at the core too.
    other = start.replace(hour=11)
    assert book_on_relay(relay, other).status_code == 303
    core_round()
    free = services.free_slots([Mode.COUNTER], start=start.date(), days=1)[Mode.COUNTER]
    assert start not in [s.starts_at for s in free] and other not in [s.starts_at for s in free]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 2


def test_a_booking_waits_on_the_relay_while_the_link_is_down(relay, core):
    port = int(relay.url.rsplit(":", 1)[1])
    start = slot_in(10)
    assert book_on_relay(relay, start).status_code == 303
    relay.stop()
    assert client.run_round().link_down
    relay.start(port)
    with relay.context():
        assert db.session.scalar(sa.select(Booking)).name == "山田 花子"  # still there
    core_round()
    assert db.session.scalar(sa.select(Booking)).name == "山田 花子"


def test_a_branch_session_booked_on_the_relay_reaches_its_branch_at_the_core(relay, core):
    """The core's branch offices reach the relay with its settings; a 支所からのオンライン相談
    booked there comes to the core with its office and meeting link, for the branch's page."""
    from consult.models import BranchOffice
    from consult.settings import override as override_settings

    meeting = "https://meet.example.jp/madoguchi/{code}"
    override_settings(relay.app, BOOKING_BRANCH_MEETING_URL=meeting)
    override_settings(core, BOOKING_BRANCH_MEETING_URL=meeting)
    office = BranchOffice(name="菊間支所", name_en="Kikuma Branch", address="菊間町浜1")
    db.session.add(office)
    db.session.commit()
    office_id = office.id
    core_round()
    index = requests.get(relay.url + "/booking/", timeout=10).text
    assert "菊間支所" in index
    start = slot_in(7)
    answer = book_on_relay(relay, start, mode="branch_video", branch=str(office_id))
    assert answer.status_code == 303, answer.text[:1000]
    core_round()
    booking = db.session.scalar(sa.select(Booking))
    assert booking.mode is Mode.BRANCH_VIDEO and booking.branch_office_id == office_id
    assert booking.video_url.startswith("https://meet.example.jp/madoguchi/")
    branch = core.test_client()
    sign_in(branch, new_staff("branch", branch_office=db.session.get(BranchOffice, office_id)))
    page = branch.get("/booking/branch").get_data(as_text=True)
    assert booking.reference in page and booking.video_url in page
