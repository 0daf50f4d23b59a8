"""The phone (電話相談): a call log that becomes a ticket."""

from flask import Flask

from consult import registry
from consult.models import Role


def register(app: Flask) -> None:
    from channels.phone import services, views

    app.register_blueprint(views.bp)
    registry.add_ticket_panel(registry.TicketPanel("phone", services.ticket_panel))
    registry.add_nav_link(
        registry.NavLink("phone.log_call", "電話相談", (Role.CONSULTANT, Role.SUPERVISOR), 30)
    )
