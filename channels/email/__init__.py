"""Email (メール): citizens' mail in through IMAP or an MTA pipe, replies out through the outbox."""

from flask import Flask

from consult import plugins, signals
from consult.models import Role


def _process_pending() -> None:
    from channels.email import services

    services.process_pending()


def register(app: Flask) -> None:
    from channels.email import cli, models, services, views  # noqa: F401 - models: the tables
    from channels.email.settings import EmailSettings
    from consult.services import mail

    plugins.install(
        app,
        plugins.Plugin(
            name="email",
            blueprints=(views.bp,),
            commands=(cli.mail_group,),
            nav_links=(
                plugins.NavLink("email.inbound", "受信メール", (Role.ADMIN,), 80),
                plugins.NavLink(
                    "email.templates",
                    "メール定型文",
                    (Role.ADMIN, Role.CONSULTANT, Role.SUPERVISOR),
                    81,
                ),
            ),
            ticket_panels=(plugins.TicketPanel("email", services.ticket_panel),),
            worker_tasks=(plugins.WorkerTask("email.inbound", _process_pending, lane="mail-in"),),
            settings=EmailSettings,
            queues=(services.INBOUND,),
            receivers=((signals.mail_queued, services.remember_outgoing),),
            # The kernel composes and sends every mail (one outgoing-mail path); citizens' mail
            # and the centre's own notices alike are delivered by this channel.
            channel=plugins.Channel(
                mail.CHANNEL,
                "メール",
                deliver=mail.deliver,
                send_automatic=services.send_automatic,
                lane="mail-out",
            ),
        ),
    )
