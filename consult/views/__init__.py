"""The kernel's blueprints."""

from flask import Flask

from consult import registry
from consult.models import Role


def register(app: Flask) -> None:
    from consult.views import admin, auth, desk

    app.register_blueprint(auth.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(admin.bp)
    registry.add_nav_link(
        registry.NavLink("desk.queue", "相談一覧", (Role.CONSULTANT, Role.SUPERVISOR), 10)
    )
    registry.add_nav_link(registry.NavLink("admin.index", "管理", (Role.ADMIN,), 90))
    _register_safety_and_reports(app)


def _register_safety_and_reports(app: Flask) -> None:
    from consult import cli
    from consult.services import ratelimit
    from consult.services import reports as report_service
    from consult.services import safety as safety_service
    from consult.views import reports, safety

    app.register_blueprint(safety.bp)
    app.register_blueprint(reports.bp)
    registry.add_ticket_panel(registry.TicketPanel("safety", safety_service.ticket_panel))
    registry.add_nav_link(
        registry.NavLink(
            "safety.incidents", "カスハラ事案", (Role.SUPERVISOR, Role.SUPPORT, Role.ADMIN), 60
        )
    )
    registry.add_nav_link(
        registry.NavLink("reports.dashboard", "統計", (Role.SUPERVISOR, Role.ADMIN), 70)
    )
    if safety_service.check_long_sessions not in cli.worker_tasks:
        cli.worker_tasks.append(safety_service.check_long_sessions)
    if ratelimit.purge_task not in cli.worker_tasks:
        cli.worker_tasks.append(ratelimit.purge_task)
    report_service.register_builtin_sections()

    @app.context_processor
    def safety_context():
        return {"help_places": safety_service.PLACES}
