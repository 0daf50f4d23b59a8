"""The citizens' voice (issue 19): satisfaction after a case closes, requests to the city and
letters to the mayor with their answer deadlines, and their figures in the reports.

Kernel code: it knows no channel. The channels ask the question in their own way (LINE's quick
reply, the mail's link, the counter's receipt) through `services.ask`; the handoff package names
a request's department; the FAQ package publishes approved, redacted answers.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from consult import plugins
from consult.models import Role


def register(app: Flask) -> None:
    from consult.voice import disposal, models, services, views  # noqa: F401 (models: metadata)
    from consult.voice.settings import VoiceSettings

    desk = (Role.CONSULTANT, Role.SUPERVISOR)
    plugins.install(
        app,
        plugins.Plugin(
            name="voice",
            blueprints=(views.bp,),
            nav_links=(
                plugins.NavLink("voice.requests_list", "要望・手紙", (*desk, Role.OFFICER), 65),
            ),
            ticket_panels=(plugins.TicketPanel("voice", views.ticket_panel),),
            # The request panel and the /requests lists follow the live channel's events.
            staff_scripts=(plugins.StaffScript("static", "js/voice.js"),),
            report_sections=(
                plugins.ReportSection("satisfaction", 70, services.satisfaction_section),
                plugins.ReportSection("citizen_requests", 75, services.request_section),
            ),
            settings=VoiceSettings,
            disposers=(plugins.Disposer("voice", disposal.dispose, disposal.HOLDS),),
            translations=Path(__file__).parent / "translations",
            # The question's page is the relay's when split (services: across the zones).
            transfer_kinds=(
                plugins.TransferKind(services.INVITE_KIND, services.apply_invite, to="relay"),
                plugins.TransferKind(services.ANSWER_KIND, services.apply_answer),
            ),
        ),
    )
