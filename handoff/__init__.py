"""Handoffs from the centre to departments and external bodies; plugs into consult."""

from flask import Flask

from consult import registry
from consult.models import Role


def register(app: Flask) -> None:
    from consult import cli
    from handoff import cli as handoff_cli
    from handoff import models, reports, rollup, services, views  # noqa: F401 (models: the tables)

    rollup.register()
    handoff_cli.register(app)

    app.register_blueprint(views.bp)
    registry.add_ticket_panel(registry.TicketPanel("handoff", views.ticket_panel))
    registry.add_staff_script("static", "js/handoff.js")
    registry.add_nav_link(
        registry.NavLink(
            "handoff.inbox",
            "引継ぎ",
            (Role.OFFICER, Role.CONSULTANT, Role.SUPERVISOR),
            30,
        )
    )
    registry.add_nav_link(
        registry.NavLink("handoff.overview", "引継ぎ状況", (Role.SUPERVISOR, Role.ADMIN), 60)
    )
    registry.add_case_record_source(services.case_records)
    registry.add_demo_seeder(services.seed_demo)
    registry.add_report_section(registry.ReportSection("handoffs", 40, reports.section))
    registry.add_report_export(registry.ReportExport("handoffs", "引継ぎ", reports.rows, order=20))
    from consult.views import auth

    auth.HOME_BY_ROLE.setdefault(Role.OFFICER, "handoff.inbox")
    if services.escalate_due not in cli.worker_tasks:
        cli.worker_tasks.append(services.escalate_due)
