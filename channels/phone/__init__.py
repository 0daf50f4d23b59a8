"""The phone (電話相談): a call log that becomes a ticket."""

from flask import Flask

from consult import plugins
from consult.models import Role


def register(app: Flask) -> None:
    from channels.phone import reports, services, views

    plugins.install(
        app,
        plugins.Plugin(
            name="phone",
            blueprints=(views.bp,),
            nav_links=(
                plugins.NavLink(
                    "phone.log_call", "電話相談", (Role.CONSULTANT, Role.SUPERVISOR), 30
                ),
            ),
            ticket_panels=(plugins.TicketPanel("phone", services.ticket_panel),),
            channel=plugins.Channel("phone", "電話"),
            report_sections=(plugins.ReportSection("phone_recording", 65, reports.section),),
        ),
    )
