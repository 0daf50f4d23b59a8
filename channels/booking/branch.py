"""Sessions from a branch office (支所からのオンライン相談).

The citizen books the mode `branch_video` at /booking/ and chooses a branch office; at the
booked time they go there, and the branch's own account (Role.BRANCH, tied to one branch
office) opens the centre's video meeting, whose link was made at booking time from
MADOGUCHI_BOOKING_BRANCH_MEETING_URL (consult.services.meeting, as joint sessions do).

Seats are the centre's: the mode has its own capacity per day type in the booking settings
(the consultants who hold the sessions at the centre), taken like any other slot's.

What a branch account sees of a booking is the least the session needs: the time, the kind of
session, the booking reference (which the citizen also holds) and the citizen's name, to
know the person who comes in. Never the content, contacts, intake answers, tickets or other
branches' bookings. Each listing is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa

from channels.booking.models import Booking, BookingStatus, Mode
from channels.booking.settings import BookingSettings
from consult.extensions import db
from consult.models import BranchOffice, Role
from consult.services import audit, meeting
from consult.services.actor import Actor
from consult.services.errors import NotFound, PermissionDenied, ValidationFailed
from consult.services.normalize import single_line
from consult.timeutil import TOKYO, tokyo_today

LIVE = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN)
# How far ahead the branch's page lists its bookings.
UPCOMING_DAYS = 14


def offered() -> bool:
    """The mode is offered when a meeting link template is set and a branch office is open."""
    return bool(BookingSettings.current().branch_meeting_url) and bool(
        db.session.scalar(sa.select(BranchOffice.id).where(BranchOffice.active.is_(True)).limit(1))
    )


def list_offices(active_only: bool = False) -> list[BranchOffice]:
    query = sa.select(BranchOffice).order_by(BranchOffice.id)
    if active_only:
        query = query.where(BranchOffice.active.is_(True))
    return list(db.session.scalars(query))


def get_office(office_id: int, active_only: bool = True) -> BranchOffice:
    """An office a citizen may choose (active), or NotFound for a made-up or closed one."""
    found = db.session.get(BranchOffice, office_id)
    if found is None or (active_only and not found.active):
        raise NotFound("選択された支所は現在予約を受け付けていません。")
    return found


def save_office(
    actor: Actor,
    office: BranchOffice | None,
    *,
    name: str,
    name_en: str | None,
    address: str | None,
    active: bool,
) -> BranchOffice:
    """Create or change a branch office (administrators). Bookings made keep their office."""
    actor.require(Role.ADMIN)
    name = single_line(name or "")
    if not name or len(name) > 80:
        raise ValidationFailed("支所名を80文字以内で入力してください。")
    name_en = single_line(name_en or "") or None
    if name_en and len(name_en) > 120:
        raise ValidationFailed("英語の支所名は120文字以内で入力してください。")
    address = single_line(address or "") or None
    if address and len(address) > 200:
        raise ValidationFailed("所在地は200文字以内で入力してください。")
    same = sa.select(BranchOffice.id).where(BranchOffice.name == name)
    if office is not None:
        same = same.where(BranchOffice.id != office.id)
    if db.session.scalar(same) is not None:
        raise ValidationFailed(f"支所名「{name}」は既に登録されています。")
    created = office is None
    if office is None:
        office = BranchOffice()
        db.session.add(office)
    office.name, office.name_en, office.address, office.active = name, name_en, address, active
    db.session.flush()
    audit.record(actor, "create" if created else "update", "branch_office", office.id)
    return office


def resolve(mode: Mode, office_id: int | None) -> tuple[BranchOffice | None, str | None]:
    """Before a seat is taken: a branch session's open office and a new meeting link; any
    other mode names no office."""
    if mode is not Mode.BRANCH_VIDEO:
        if office_id is not None:
            raise ValidationFailed("支所は「支所からのオンライン相談」でだけ選べます。")
        return None, None
    template = BookingSettings.current().branch_meeting_url
    if not template:
        raise ValidationFailed("支所からのオンライン相談は現在受け付けていません。")
    if office_id is None:
        raise ValidationFailed("相談に行く支所を選んでください。")
    try:
        office = get_office(office_id)
    except NotFound as error:
        raise ValidationFailed(error.message) from None
    return office, meeting.link(template, meeting.new_code())


@dataclass(frozen=True)
class BranchSession:
    """One row of the branch's page: only what the session needs (see the module's doc)."""

    reference: str
    starts_at: datetime
    ends_at: datetime
    kind_label: str
    name: str
    status: BookingStatus
    meeting_url: str | None


def office_of(actor: Actor) -> BranchOffice:
    actor.require(Role.BRANCH)
    office = actor.staff.branch_office if actor.staff is not None else None
    if office is None:
        raise PermissionDenied("この支所のアカウントには支所が設定されていません。")
    return office


def sessions(actor: Actor, now: datetime | None = None) -> tuple[BranchOffice, list]:
    """Today's and the coming days' live sessions at the actor's own branch office, audited."""
    office = office_of(actor)
    start = datetime.combine(tokyo_today(now), time(0), TOKYO)
    rows = db.session.execute(
        sa.select(
            Booking.reference,
            Booking.starts_at,
            Booking.ends_at,
            Booking.name,
            Booking.status,
            Booking.video_url,
        )
        .where(
            Booking.branch_office_id == office.id,
            Booking.mode == Mode.BRANCH_VIDEO,
            Booking.starts_at >= start,
            Booking.starts_at < start + timedelta(days=UPCOMING_DAYS + 1),
            Booking.status != BookingStatus.CANCELLED,
        )
        .order_by(Booking.starts_at, Booking.id)
    ).all()
    audit.record(actor, "view", "booking", f"branch:{office.id}", "支所の予約一覧")
    return office, [
        BranchSession(
            reference=row.reference,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            kind_label="支所からのオンライン相談",
            name=row.name,
            status=BookingStatus(row.status),
            # Checked in at the centre: the session is on, the branch may need to reopen it.
            meeting_url=row.video_url if row.status in LIVE else None,
        )
        for row in rows
    ]


def seed_demo(members: dict) -> None:
    """Two of Imabari's branch offices and the 菊間支所 terminal's account (demo data)."""
    from consult.demo import DEMO_PASSWORD
    from consult.services import staff as staff_service

    admin = Actor(members["admin"], "seed")
    kikuma = save_office(
        admin,
        None,
        name="菊間支所",
        name_en="Kikuma Branch Office",
        address="今治市菊間町浜（菊間支所 1階 相談室）",
        active=True,
    )
    save_office(
        admin,
        None,
        name="波方支所",
        name_en="Namikata Branch Office",
        address="今治市波方町樋口（波方支所 2階）",
        active=True,
    )
    members["kikuma"] = staff_service.create_staff(
        None,
        login="kikuma",
        full_name="菊間支所 相談端末",
        display_name="きくま / Kikuma",
        role=Role.BRANCH.value,
        password=DEMO_PASSWORD,
        branch_office_id=kikuma.id,
    )
