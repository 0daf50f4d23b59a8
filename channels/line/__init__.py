"""LINE (LINE公式アカウント): consultations by LINE message, answered from the ticket page."""

from flask import Flask

from consult import plugins
from consult.settings import section


def register(app: Flask) -> None:
    from channels.line import client, intake, models, notices, services, views  # noqa: F401
    from channels.line.settings import LineSettings
    from consult import signals
    from consult.models import Role

    def setup(app: Flask) -> None:
        intake.install(app)
        if client.settings_from(section(LineSettings, app)).configured:
            services.warm_up()

    plugins.install(
        app,
        plugins.Plugin(
            name="line",
            blueprints=(views.bp,),
            nav_links=(
                plugins.NavLink(
                    "line.notices_page", "LINEお知らせ", (Role.SUPERVISOR, Role.ADMIN), 64
                ),
            ),
            # A published alert becomes a draft notice to those who chose consumer alerts.
            receivers=((signals.consumer_alert_published, notices.on_alert_published),),
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
