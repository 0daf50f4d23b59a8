"""The counter (窓口): walk-in reception, reception numbers and the lobby's waiting display."""

from flask import Flask

from consult import registry
from consult.models import Role


def register(app: Flask) -> None:
    from channels.counter import services, views
    from consult.services import tickets

    tickets.ticket_closed.connect(services.finish_on_close)
    app.register_blueprint(views.bp)
    registry.add_ticket_panel(registry.TicketPanel("counter", services.ticket_panel))
    registry.add_nav_link(
        registry.NavLink("counter.reception", "窓口受付", (Role.CONSULTANT, Role.SUPERVISOR), 20)
    )
