"""Online booking (予約) and the centre's 365-day calendar: slots, capacity, exceptions, rota."""

from pathlib import Path

from flask import Flask

from consult import registry
from consult.models import Role


def register(app: Flask) -> None:
    from channels.booking import models, services, views  # noqa: F401 (models for the metadata)
    from consult import cli as consult_cli
    from consult import i18n
    from consult.services import calendar, ratelimit

    app.config["MADOGUCHI"].setdefault("BOOKING_RATE_LIMIT", "30 per hour;10 per minute")
    app.config["MADOGUCHI"].setdefault("BOOKING_PLACE", "市民相談センター 窓口")
    app.register_blueprint(views.public_bp)
    app.register_blueprint(views.staff_bp)
    ratelimit.parse(app.config["MADOGUCHI"]["BOOKING_RATE_LIMIT"])  # refuse a bad setting early
    i18n.add_translation_dir(Path(__file__).parent / "translations")
    if services.hour_override not in calendar.hour_overrides:
        calendar.hour_overrides.append(services.hour_override)
    registry.add_duty_lookup(services.duty_department_for)
    if services.reminder_task not in consult_cli.worker_tasks:
        consult_cli.worker_tasks.append(services.reminder_task)
    desk = (Role.CONSULTANT, Role.SUPERVISOR)
    registry.add_nav_link(registry.NavLink("booking_staff.day", "予約", desk, 40))
    registry.add_nav_link(
        registry.NavLink("booking_staff.admin_settings", "予約・カレンダー設定", (Role.ADMIN,), 90)
    )
