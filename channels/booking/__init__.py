"""Online booking (予約): slots, capacity per day type, check-in, feeds; hours from the kernel."""

from pathlib import Path

from flask import Flask

from consult import plugins
from consult.models import Role


def register(app: Flask) -> None:
    from channels.booking import models, services, views  # noqa: F401 (models for the metadata)

    app.config["MADOGUCHI"].setdefault("BOOKING_RATE_LIMIT", "30 per hour;10 per minute")
    app.config["MADOGUCHI"].setdefault("BOOKING_PLACE", "市民相談センター 窓口")
    desk = (Role.CONSULTANT, Role.SUPERVISOR)
    plugins.install(
        app,
        plugins.Plugin(
            name="booking",
            blueprints=(views.public_bp, views.staff_bp),
            nav_links=(
                plugins.NavLink("booking_staff.day", "予約", desk, 40),
                plugins.NavLink("booking_staff.admin_settings", "予約の設定", (Role.ADMIN,), 90),
            ),
            translations=Path(__file__).parent / "translations",
            worker_tasks=(
                plugins.WorkerTask("booking.reminders", services.reminder_task, lane="alerts"),
            ),
            channel=plugins.Channel("booking", "予約"),
            setup=views.init_limiter,
        ),
    )
