"""Email (メール): citizens' mail in through IMAP or an MTA pipe, replies out through the outbox."""

from flask import Flask

from consult import plugins, signals
from consult.models import Role


def _process_pending() -> None:
    from channels.email import tasks

    tasks.process_pending()


def _search(terms):
    """The desk's search finds mail from senders nobody has registered yet (「匿名」 on the
    ticket) by the exact address; their name and address are in the search index too."""
    import sqlalchemy as sa

    from channels.email.models import EmailThread

    if not terms.email:
        return None
    return sa.select(EmailThread.ticket_id).where(EmailThread.address == terms.email)


def _search_texts(connection, ticket_ids):
    """The From display name and address as received, for the search index's documents."""
    import sqlalchemy as sa

    from channels.email.models import EmailThread

    table = EmailThread.__table__
    found = {}
    for ticket_id, name, address in connection.execute(
        sa.select(table.c.ticket_id, table.c.sender_name, table.c.address).where(
            table.c.ticket_id.in_(ticket_ids)
        )
    ):
        found[ticket_id] = [name, address]
    return found


def _dispose(batch):
    from channels.email import disposal

    disposal.dispose(batch)


def _holds():
    from channels.email import disposal

    return disposal.HOLDS


def _orphans(cutoff):
    from channels.email import disposal

    return disposal.orphans(cutoff)


def register(app: Flask) -> None:
    from channels.email import cli, disposal, models, services, transfer, views
    from channels.email.settings import EmailSettings
    from consult.services import mail

    plugins.install(
        app,
        plugins.Plugin(
            name="email",
            disposers=(
                plugins.Disposer("email", _dispose, _holds(), _orphans, unlinked=disposal.UNLINKED),
            ),
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
            worker_tasks=(
                plugins.WorkerTask("email.inbound", _process_pending, lane="mail-in"),
                # The relay's, with MADOGUCHI_SANITISE_IN=relay: attachments converted there.
                plugins.WorkerTask("email.relay_convert", transfer.relay_convert, lane="sanitise"),
            ),
            settings=EmailSettings,
            queues=(services.INBOUND,),
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.KIND,
                    transfer.apply,
                    pending=transfer.pending,
                    acknowledge=transfer.acknowledge,
                    expire=transfer.expire,
                ),
            ),
            receivers=(
                (signals.mail_queued, services.remember_outgoing),
                # A closed case's citizen is asked one question (満足度), by a link.
                (signals.ticket_closed, services.ask_satisfaction),
            ),
            ticket_search=(_search,),
            search_texts=(plugins.SearchTexts(models.EmailThread, _search_texts),),
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
