"""The kernel's own plugin: its blueprints, navigation, safety panel, reports and worker task."""

from flask import Flask

from consult import plugins
from consult.models import Role


def register(app: Flask) -> None:
    from consult import cli, records_cli, tasks
    from consult.config import SafetySettings
    from consult.services import (
        callbacks,
        disclosure_jobs,
        outbox,
        protection,
        ratelimit,
        safe_files,
    )
    from consult.services import reports as report_service
    from consult.services import safety as safety_service
    from consult.services import today as today_service
    from consult.views import account, admin, auth, desk, files, records, reports, safety, today
    from consult.views import calendar as calendar_views
    from consult.views.desk import attachments_panel

    desk_roles = (Role.CONSULTANT, Role.SUPERVISOR)
    plugins.install(
        app,
        plugins.Plugin(
            name="consult",
            blueprints=(
                auth.bp,
                account.bp,
                today.bp,
                desk.bp,
                admin.bp,
                calendar_views.bp,
                safety.bp,
                reports.bp,
                files.bp,
                records.bp,
            ),
            nav_links=(
                plugins.NavLink("today.today", "今日", desk_roles, 5),
                plugins.NavLink("desk.queue", "相談一覧", desk_roles, 10),
                plugins.NavLink(
                    "safety.incidents",
                    "カスハラ事案",
                    (Role.SUPERVISOR, Role.SUPPORT, Role.ADMIN),
                    60,
                ),
                plugins.NavLink("reports.dashboard", "統計", (Role.SUPERVISOR, Role.ADMIN), 70),
                plugins.NavLink(
                    "records.index", "記録の保存・廃棄", (Role.SUPERVISOR, Role.ADMIN), 85
                ),
                plugins.NavLink("admin.index", "管理", (Role.ADMIN,), 90),
            ),
            today_sections=(
                plugins.TodaySection("my_cases", 10, today_service.my_cases),
                plugins.TodaySection("callbacks", 20, today_service.my_callbacks),
                plugins.TodaySection("protected_search", 5, protection.today_section),
            ),
            ticket_panels=(
                plugins.TicketPanel("attachments", attachments_panel),
                plugins.TicketPanel("callbacks", callbacks.ticket_panel),
                plugins.TicketPanel("safety", safety_service.ticket_panel),
            ),
            worker_tasks=(
                plugins.WorkerTask(
                    "safety.long_sessions", safety_service.check_long_sessions, lane="alerts"
                ),
                plugins.WorkerTask(
                    "safety.escalate_alerts",
                    safety_service.escalate_alerts,
                    lane="alerts",
                    interval=1.0,
                ),
                plugins.WorkerTask("ratelimit.purge", ratelimit.purge_task, lane="alerts"),
                plugins.WorkerTask("callbacks.remind", callbacks.remind, lane="alerts"),
                # 無害化 in a lane of its own: a slow conversion never holds up LINE or mail.
                plugins.WorkerTask("sanitise.convert", safe_files.convert_due, lane="sanitise"),
                # Disclosure bundles (consult.services.disclosure_jobs): never in a request.
                plugins.WorkerTask(
                    "disclosure.build", disclosure_jobs.build_due, lane="disclosure", interval=1.0
                ),
                plugins.WorkerTask(
                    "disclosure.expire", disclosure_jobs.expire_due, lane="disclosure", interval=60
                ),
                # The month's 廃棄予定一覧 (consult.services.retention), in a lane of its own.
                plugins.WorkerTask(
                    "retention.monthly_list",
                    tasks.prepare_monthly_list,
                    lane="records",
                    interval=600,
                ),
            ),
            staff_scripts=(
                plugins.StaffScript("static", "js/callbacks.js"),
                plugins.StaffScript("static", "js/disclosure.js"),
            ),
            commands=(*cli.COMMANDS, records_cli.records_group),
            queues=(outbox.QUEUE, safe_files.QUEUE, disclosure_jobs.QUEUE),
            home_pages={
                Role.CONSULTANT: "desk.queue",
                Role.SUPERVISOR: "desk.queue",
                Role.ADMIN: "admin.index",
            },
            report_sections=report_service.BUILTIN_SECTIONS,
            report_exports=report_service.BUILTIN_EXPORTS,
            settings=SafetySettings,
        ),
    )

    @app.context_processor
    def safety_context():
        return {"help_places": safety_service.PLACES, "visit_place": safety_service.visit_place}
