"""Online booking (予約): slots, capacity per day type, check-in, feeds; hours from the kernel."""

from pathlib import Path

from flask import Flask

from consult import plugins
from consult.models import Role


def _dispose(batch):
    from channels.booking import disposal

    disposal.dispose(batch)


def _seed_demo(members: dict) -> None:
    from channels.booking import branch, specialist

    specialist.seed_demo(members)
    branch.seed_demo(members)


def _holds():
    from channels.booking import disposal

    return disposal.HOLDS


def register(app: Flask) -> None:
    from channels.booking import (  # noqa: F401 (models: metadata)
        branch,
        disposal,
        models,
        services,
        specialist,
        today,
        transfer,
        views,
    )
    from channels.booking.settings import BookingSettings

    desk = (Role.CONSULTANT, Role.SUPERVISOR)
    plugins.install(
        app,
        plugins.Plugin(
            name="booking",
            disposers=(
                plugins.Disposer("booking", _dispose, _holds(), unlinked=disposal.UNLINKED),
            ),
            blueprints=(views.public_bp, views.staff_bp),
            nav_links=(
                plugins.NavLink("booking_staff.day", "予約", desk, 40),
                plugins.NavLink("booking_staff.admin_settings", "予約の設定", (Role.ADMIN,), 90),
                plugins.NavLink("booking_staff.admin_kinds", "専門相談の設定", (Role.ADMIN,), 91),
                plugins.NavLink("booking_staff.admin_branches", "支所の設定", (Role.ADMIN,), 92),
                plugins.NavLink("booking_staff.branch_home", "支所の予約", (Role.BRANCH,), 10),
                # Any member of staff may hold a specialist session (a counsellor, an officer).
                plugins.NavLink(
                    "booking_staff.specialist_list",
                    "担当の専門相談",
                    (Role.CONSULTANT, Role.SUPERVISOR, Role.OFFICER, Role.SUPPORT),
                    95,
                ),
            ),
            staff_scripts=(plugins.StaffScript("static", "js/booking.js"),),
            translations=Path(__file__).parent / "translations",
            worker_tasks=(
                plugins.WorkerTask("booking.reminders", services.send_reminders, lane="alerts"),
            ),
            channel=plugins.Channel("booking", "予約"),
            today_sections=(plugins.TodaySection("bookings", 30, today.section),),
            settings=BookingSettings,
            demo_seeder=_seed_demo,
            # A branch office's account starts (and stays) on its own branch's sessions.
            home_pages={Role.BRANCH: "booking_staff.branch_home"},
            disclosure_source=_disclosure,
            setup=views.check_rate_limit,
            transfer_kinds=transfer.kinds(),
        ),
    )


def _disclosure(citizen_id: int) -> list:
    """The person's bookings for the disclosure bundle: those of their tickets, and those made
    with their phone or email. A booking made under another name with the same phone (a
    family's landline) gives that name to the redactor as another party's."""
    import sqlalchemy as sa

    from channels.booking.models import Booking
    from consult.extensions import db
    from consult.models import Citizen, CitizenEmail, CitizenPhone, Ticket
    from consult.services.disclosure import DisclosureSection, Item
    from consult.timeutil import format_tokyo

    ids = [
        citizen_id,
        *list(
            db.session.scalars(sa.select(Citizen.id).where(Citizen.merged_into_id == citizen_id))
        ),
    ]
    phones = sa.select(CitizenPhone.number).where(CitizenPhone.citizen_id.in_(ids))
    emails = sa.select(CitizenEmail.address).where(CitizenEmail.citizen_id.in_(ids))
    tickets = sa.select(Ticket.id).where(Ticket.citizen_id.in_(ids))
    own = db.session.get(Citizen, citizen_id)
    bookings = list(
        db.session.scalars(
            sa.select(Booking)
            .where(
                sa.or_(
                    Booking.ticket_id.in_(tickets),
                    Booking.phone.in_(phones),
                    Booking.email.in_(emails),
                )
            )
            .order_by(Booking.starts_at, Booking.id)
        )
    )
    from consult.services.normalize import fold_name

    own_fold = fold_name(own.name) if own is not None else None
    names = [b.name for b in bookings if b.name and fold_name(b.name) != own_fold]
    items = [
        Item(
            kind="booking",
            label="予約",
            ref=b.reference,
            at=format_tokyo(b.starts_at),
            text=b.content,
            fields={
                "mode": b.mode.value,
                "status": b.status.value,
                "name": b.name if fold_name(b.name) == own_fold else None,
                "made_at": format_tokyo(b.created_at),
            },
        )
        for b in bookings
        if fold_name(b.name) == own_fold or b.ticket_id is not None
    ]
    return [DisclosureSection("予約", items, names=names)] if items else []
