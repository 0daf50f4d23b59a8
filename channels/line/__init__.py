"""LINE (LINE公式アカウント): consultations by LINE message, answered from the ticket page."""

from flask import Flask

from consult import registry


def register(app: Flask) -> None:
    from channels.line import client, intake, models, services, views  # noqa: F401 (models)
    from consult import cli
    from consult.services import outbox

    app.register_blueprint(views.bp)
    intake.install(app)
    outbox.register_deliverer(services.CHANNEL, services.deliver)
    registry.add_ticket_panel(registry.TicketPanel("line", views_panel))
    registry.add_automatic_sender(services.CHANNEL, services.send_automatic)
    if services.worker_task not in cli.worker_tasks:
        cli.worker_tasks.append(services.worker_task)
    if client.settings_from(app.config["MADOGUCHI"]).configured:
        services.warm_up()


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
