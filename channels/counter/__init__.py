"""The counter (窓口): walk-in reception, reception numbers and the lobby's waiting display."""

from flask import Flask

from consult import plugins, signals
from consult.models import Role


def register(app: Flask) -> None:
    from channels.counter import services, views

    plugins.install(
        app,
        plugins.Plugin(
            name="counter",
            blueprints=(views.bp,),
            nav_links=(
                plugins.NavLink(
                    "counter.reception", "窓口受付", (Role.CONSULTANT, Role.SUPERVISOR), 20
                ),
            ),
            ticket_panels=(plugins.TicketPanel("counter", services.ticket_panel),),
            receivers=(
                (signals.ticket_closed, services.finish_on_close),
                (signals.visit_place_asked, services.room_in_progress),
                (signals.counter_visit_moved, services.publish_call),
            ),
            visit_lookup=services.visit_lookup,
            channel=plugins.Channel("counter", "窓口"),
        ),
    )
