"""LINE (LINE公式アカウント): consultations by LINE message, answered from the ticket page."""

from flask import Flask

from consult import plugins
from consult.settings import section


def register(app: Flask) -> None:
    from channels.line import client, intake, models, services, views  # noqa: F401 (models)
    from channels.line.settings import LineSettings

    def setup(app: Flask) -> None:
        intake.install(app)
        if client.settings_from(section(LineSettings, app)).configured:
            services.warm_up()

    plugins.install(
        app,
        plugins.Plugin(
            name="line",
            blueprints=(views.bp,),
            ticket_panels=(plugins.TicketPanel("line", views_panel),),
            # Events in, media and messages out each in their own lane: a slow download or a
            # LINE API that does not answer never holds up the others (or the mail).
            worker_tasks=(
                plugins.WorkerTask("line.events", services.process_pending, lane="line-in"),
                plugins.WorkerTask("line.media", services.fetch_due_media, lane="line-media"),
            ),
            queues=(services.EVENTS, services.MEDIA),
            channel=plugins.Channel(
                services.CHANNEL,
                "LINE",
                deliver=services.deliver,
                send_automatic=services.send_automatic,
                lane="line-out",
            ),
            settings=LineSettings,
            citizen_secrets=_citizen_secrets,
            disclosure_source=_disclosure,
            setup=setup,
        ),
    )


def views_panel(ticket):
    from channels.line import services
    from channels.line.forms import ActionForm, ReplyForm

    data = services.panel_data(ticket)
    if data is None:
        return None
    return "line/_panel.html", {
        "line": data,
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
