"""Email (メール): citizens' mail in through IMAP or an MTA pipe, replies out through the outbox."""

from flask import Flask

from consult import registry
from consult.models import Role


def _process_pending() -> None:
    from channels.email import services

    services.process_pending()


def register(app: Flask) -> None:
    from channels.email import cli, models, services, views  # noqa: F401 - models: the tables
    from consult import cli as consult_cli
    from consult.services import mail

    mail.mail_queued.connect(services.remember_outgoing)
    app.register_blueprint(views.bp)
    app.cli.add_command(cli.mail_group)
    if _process_pending not in consult_cli.worker_tasks:
        consult_cli.worker_tasks.append(_process_pending)
    registry.add_ticket_panel(registry.TicketPanel("email", services.ticket_panel))
    registry.add_automatic_sender("email", services.send_automatic)
    registry.add_nav_link(registry.NavLink("email.inbound", "受信メール", (Role.ADMIN,), 80))
    registry.add_nav_link(
        registry.NavLink(
            "email.templates", "メール定型文", (Role.ADMIN, Role.CONSULTANT, Role.SUPERVISOR), 81
        )
    )
