"""Online booking (予約): slots, capacity per day type, check-in, feeds; hours from the kernel."""

from pathlib import Path

from flask import Flask

from consult import plugins
from consult.models import Role


def _dispose(batch):
    from channels.booking import disposal

    disposal.dispose(batch)


def _holds():
    from channels.booking import disposal

    return disposal.HOLDS


def register(app: Flask) -> None:
    from channels.booking import (  # noqa: F401 (models: metadata)
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
            disposers=(plugins.Disposer("booking", _dispose, _holds()),),
            blueprints=(views.public_bp, views.staff_bp),
            nav_links=(
                plugins.NavLink("booking_staff.day", "予約", desk, 40),
                plugins.NavLink("booking_staff.admin_settings", "予約の設定", (Role.ADMIN,), 90),
                plugins.NavLink("booking_staff.admin_kinds", "専門相談の設定", (Role.ADMIN,), 91),
                # Any member of staff may hold a specialist session (a counsellor, an officer).
                plugins.NavLink(
                    "booking_staff.specialist_list",
                    "担当の専門相談",
                    (Role.CONSULTANT, Role.SUPERVISOR, Role.OFFICER, Role.SUPPORT),
                    95,
                ),
            ),
            translations=Path(__file__).parent / "translations",
            worker_tasks=(
                plugins.WorkerTask("booking.reminders", services.send_reminders, lane="alerts"),
            ),
            channel=plugins.Channel("booking", "予約"),
            today_sections=(plugins.TodaySection("bookings", 30, today.section),),
            settings=BookingSettings,
            demo_seeder=specialist.seed_demo,
            setup=views.check_rate_limit,
            transfer_kinds=transfer.kinds(),
        ),
    )
