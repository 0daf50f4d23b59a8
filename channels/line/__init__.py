"""LINE (LINE公式アカウント): consultations by LINE message, answered from the ticket page."""

from flask import Flask

from consult import plugins, signals
from consult.settings import section


def _dispose(batch):
    from channels.line import disposal

    disposal.dispose(batch)


def _holds():
    from channels.line import disposal

    return disposal.HOLDS


def _orphans(cutoff):
    from channels.line import disposal

    return disposal.orphans(cutoff)


def register(app: Flask) -> None:
    from channels.line import (
        client,
        disposal,
        intake,
        models,
        notices,
        services,
        tasks,
        transfer,
        views,
    )
    from channels.line.settings import LineSettings
    from consult.config import CoreSettings
    from consult.models import Role

    def setup(app: Flask) -> None:
        # The core is not reachable from the internet: LINE's webhook is the relay's.
        if section(CoreSettings, app).role != "core":
            intake.install(app)
        if client.settings_from(section(LineSettings, app)).configured:
            services.warm_up()

    plugins.install(
        app,
        plugins.Plugin(
            name="line",
            disposers=(
                plugins.Disposer("line", _dispose, _holds(), _orphans, unlinked=disposal.UNLINKED),
            ),
            blueprints=(views.bp,),
            nav_links=(
                plugins.NavLink(
                    "line.notices_page", "LINEお知らせ", (Role.SUPERVISOR, Role.ADMIN), 64
                ),
            ),
            # A published alert becomes a draft notice to those who chose consumer alerts.
            ticket_panels=(plugins.TicketPanel("line", views_panel),),
            # Events in, media and messages out each in their own lane: a slow download or a
            # LINE API that does not answer never holds up the others (or the mail).
            worker_tasks=(
                plugins.WorkerTask("line.events", tasks.process_pending, lane="line-in"),
                plugins.WorkerTask("line.media", tasks.fetch_due_media, lane="line-media"),
                # Profiles call LINE too: in the media lane, never holding up the events.
                plugins.WorkerTask("line.profiles", tasks.fetch_profiles, lane="line-media"),
                # The relay's: LINE's content API is out of the core's reach (LGWAN).
                plugins.WorkerTask("line.relay_content", transfer.relay_task, lane="line-media"),
            ),
            queues=(services.EVENTS, services.MEDIA),
            # A closed case's citizen is asked one question (満足度), as a quick reply.
            receivers=(
                (signals.ticket_closed, services.ask_satisfaction),
                (signals.consumer_alert_published, notices.on_alert_published),
            ),
            channel=plugins.Channel(
                services.CHANNEL,
                "LINE",
                deliver=tasks.deliver,
                send_automatic=services.send_automatic,
                lane="line-out",
                relay_form=transfer.relay_form,
            ),
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.KIND,
                    transfer.apply,
                    pending=transfer.pending,
                    acknowledge=transfer.acknowledge,
                    after_apply=transfer.after_apply,
                    expire=transfer.expire,
                ),
            ),
            settings=LineSettings,
            citizen_secrets=_citizen_secrets,
            disclosure_source=_disclosure,
            setup=setup,
            search_texts=(plugins.SearchTexts(models.LineTicket, _search_texts),),
        ),
    )


def _search_texts(connection, ticket_ids):
    """The LINE display name, for the search documents of the contact's LINE tickets and of
    its citizen's other cases (so 「西村」 finds a LINE sender nobody has registered yet)."""
    import sqlalchemy as sa

    from channels.line.models import LineContact, LineTicket
    from consult.models import Ticket
    from consult.services.search import schema_has

    if not schema_has(connection, "line_contact", "display_name"):
        return {}  # an older schema (the search migration's backfill): no names there yet
    contact, link, ticket = LineContact.__table__, LineTicket.__table__, Ticket.__table__
    found: dict[int, list[str]] = {}

    def add(ticket_id: int, name: str) -> None:
        # Also without its spaces, as citizens' names are: 西村みどり typed whole meets 西村 みどり.
        names = found.setdefault(ticket_id, [])
        for text in (name, "".join(name.split())):
            if text not in names:
                names.append(text)

    named = contact.c.display_name.is_not(None)
    for ticket_id, name in connection.execute(
        sa.select(link.c.ticket_id, contact.c.display_name)
        .join(contact, contact.c.id == link.c.contact_id)
        .where(link.c.ticket_id.in_(ticket_ids), named)
    ):
        add(ticket_id, name)
    for ticket_id, name in connection.execute(
        sa.select(ticket.c.id, contact.c.display_name)
        .join(contact, contact.c.citizen_id == ticket.c.citizen_id)
        .where(ticket.c.id.in_(ticket_ids), named)
    ):
        add(ticket_id, name)
    return found


def views_panel(ticket):
    from channels.line import services
    from channels.line.forms import ActionForm, ReplyForm

    data = services.panel_data(ticket)
    if data is None:
        return None
    from consult.services import safe_files

    return "line/_panel.html", {
        "line": data,
        "safe": safe_files.for_source("line_media", [item.id for item in data.media]),
        "reply_form": ReplyForm(formdata=None),
        "action_form": ActionForm(formdata=None),
    }


def _citizen_secrets(citizen_ids: list[int]) -> list[str]:
    """The LINE user ids linked to these citizens (支援措置: never shown to the unnamed)."""
    import sqlalchemy as sa

    from channels.line.models import LineContact
    from consult.extensions import db

    return list(
        db.session.scalars(
            sa.select(LineContact.user_id).where(LineContact.citizen_id.in_(citizen_ids))
        )
    )


def _disclosure(citizen_id: int) -> list:
    """The person's LINE link, for the disclosure bundle (messages are on the timeline)."""
    import sqlalchemy as sa

    from channels.line.models import LineContact
    from consult.extensions import db
    from consult.services.disclosure import DisclosureSection, Item
    from consult.timeutil import format_tokyo

    contacts = db.session.scalars(
        sa.select(LineContact).where(LineContact.citizen_id == citizen_id)
    )
    items = [
        Item(
            kind="line",
            label="LINEの連携",
            ref=f"LINE{c.id}",
            at=format_tokyo(c.created_at),
            fields={"user_id": c.user_id, "following": c.following},
        )
        for c in contacts
    ]
    return [DisclosureSection("LINE", items)] if items else []
