"""Handoffs from the centre to departments and external bodies; plugs into consult."""

from flask import Flask

from consult import plugins, signals
from consult.models import Role


def _dispose(batch):
    from handoff import disposal

    disposal.dispose(batch)


def _holds():
    from handoff import disposal

    return disposal.HOLDS


def register(app: Flask) -> None:
    from handoff import cli as handoff_cli
    from handoff import (  # noqa: F401
        live,
        models,
        reports,
        rollup,
        services,
        tasks,
        today,
        transfer,
        views,
    )
    from handoff.settings import HandoffSettings

    rollup.register(app)
    plugins.install(
        app,
        plugins.Plugin(
            name="handoff",
            disposers=(plugins.Disposer("handoff", _dispose, _holds()),),
            blueprints=(views.bp,),
            commands=(handoff_cli.handoffs_group,),
            nav_links=(
                plugins.NavLink(
                    "handoff.inbox",
                    "引継ぎ",
                    (Role.OFFICER, Role.CONSULTANT, Role.SUPERVISOR),
                    30,
                ),
                plugins.NavLink(
                    "handoff.overview", "引継ぎ状況", (Role.SUPERVISOR, Role.ADMIN), 60
                ),
            ),
            ticket_panels=(plugins.TicketPanel("handoff", views.ticket_panel),),
            today_sections=(plugins.TodaySection("handoffs", 40, today.section),),
            staff_scripts=(plugins.StaffScript("static", "js/handoff.js"),),
            worker_tasks=(
                plugins.WorkerTask("handoff.escalations", tasks.escalations, lane="alerts"),
            ),
            home_pages={Role.OFFICER: "handoff.inbox"},
            settings=HandoffSettings,
            case_record_source=services.case_records,
            receivers=(
                (signals.handoff_changed, live.handoff_changed),
                # A request to the city or a letter to the mayor: its first handoff names the
                # department responsible for the answer.
                (signals.handoff_changed, services.name_request_department),
                (signals.citizen_request_marked, services.name_marked_request_department),
                # Its department's officer's written answer completes the 文書回答 handoff.
                (signals.citizen_request_answered, services.complete_answered_request_handoff),
            ),
            demo_seeder=services.seed_demo,
            report_sections=(plugins.ReportSection("handoffs", 40, reports.section),),
            report_exports=(plugins.ReportExport("handoffs", "引継ぎ", reports.rows, order=20),),
            # The external bodies' link is the relay's when split (handoff.transfer).
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.LINKS, transfer.apply_links, to="relay", snapshot=transfer.snapshot
                ),
                plugins.TransferKind(transfer.EXTERNAL, transfer.apply_external),
            ),
        ),
    )
