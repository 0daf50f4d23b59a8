"""LINE (LINE公式アカウント): consultations by LINE message, answered from the ticket page."""

from flask import Flask

from consult import plugins
from consult.settings import section


def register(app: Flask) -> None:
    from channels.line import client, intake, models, services, transfer, views  # noqa: F401
    from channels.line.settings import LineSettings
    from consult.config import CoreSettings

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
                relay_form=transfer.relay_form,
            ),
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.KIND,
                    transfer.apply,
                    pending=transfer.pending,
                    acknowledge=transfer.acknowledge,
                    after_apply=transfer.after_apply,
                ),
            ),
            settings=LineSettings,
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
