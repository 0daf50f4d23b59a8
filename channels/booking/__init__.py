"""Online booking (予約) and the centre's 365-day calendar: slots, capacity, exceptions, rota."""

from pathlib import Path

from flask import Flask

from consult import plugins
from consult.models import Role


def register(app: Flask) -> None:
    from channels.booking import models, services, views  # noqa: F401 (models for the metadata)
    from channels.booking.settings import BookingSettings

    desk = (Role.CONSULTANT, Role.SUPERVISOR)
    plugins.install(
        app,
        plugins.Plugin(
            name="booking",
            blueprints=(views.public_bp, views.staff_bp),
            nav_links=(
                plugins.NavLink("booking_staff.day", "予約", desk, 40),
                plugins.NavLink(
                    "booking_staff.admin_settings", "予約・カレンダー設定", (Role.ADMIN,), 90
                ),
            ),
            translations=Path(__file__).parent / "translations",
            worker_tasks=(
                plugins.WorkerTask("booking.reminders", services.send_reminders, lane="alerts"),
            ),
            hour_override=services.hour_override,
            duty_lookup=services.duty_department_for,
            channel=plugins.Channel("booking", "予約"),
            settings=BookingSettings,
            setup=views.check_rate_limit,
        ),
    )
