"""Email (メール): citizens' mail in through IMAP or an MTA pipe, replies out through the outbox."""

from flask import Flask

from consult import plugins, signals
from consult.models import Role


def _process_pending() -> None:
    from channels.email import services

    services.process_pending()


def _search(terms):
    """The desk's search also finds mail from senders nobody has registered yet (「匿名」 on
    the ticket): by the From display name as received, or by the address."""
    import sqlalchemy as sa

    from channels.email.models import EmailThread
    from consult.services.normalize import like_prefix

    conditions = []
    if terms.words:
        pattern = "%" + like_prefix(terms.words)[:-1] + "%"
        conditions.append(EmailThread.sender_name.like(pattern, escape="\\"))
    if terms.email:
        conditions.append(EmailThread.address == terms.email)
    if not conditions:
        return None
    return sa.select(EmailThread.ticket_id).where(sa.or_(*conditions))


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
            ticket_search=(_search,),
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
