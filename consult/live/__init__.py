"""The kernel's live channel: events for staff pages, pushed over one stream per page.

Features publish through signal receivers (`services.publish(kind, audience, payload)`); pages
listen with `madoguchi.live.on(kind, fn)` (consult/static/js/live.js). See services.py for how
events are fanned out across processes and servers.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import current_user

from consult import plugins, signals


def _ticket_created(ticket, actor=None, **_):
    from consult.live import services

    services.publish(
        "ticket.created",
        ["desk"],
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "channel": ticket.channel.value,
            "status": ticket.status.value,
            "by": actor.staff_id if actor is not None else None,
        },
    )


def _ticket_status_changed(ticket, actor=None, old=None, new=None, **_):
    from consult.live import services

    services.publish(
        "ticket.status",
        [f"ticket:{ticket.id}"],
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "status": ticket.status.value,
            "status_label": ticket.status_label,
            "by": actor.staff_id if actor is not None else None,
        },
    )


def _timeline_entry_added(ticket, entry=None, **_):
    from consult.live import services

    if ticket.id is None:  # a ticket being created: ticket.created says it
        return
    services.publish(
        "ticket.timeline",
        [f"ticket:{ticket.id}"],
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "entry": entry.kind.value if entry is not None else None,
            "by": entry.author.id if entry is not None and entry.author is not None else None,
        },
    )


def _help_alert_changed(alert, action=None, **_):
    """The support room and supervisors, and the consultant who asked, hear of every step."""
    from consult.live import services

    services.publish(
        "alert",
        ["role:support", "role:supervisor", f"staff:{alert.raised_by_id}"],
        {
            "alert_id": alert.id,
            "action": action,
            "place": alert.place,
            "ticket_id": alert.ticket_id,
            "raised_by": alert.raised_by_id,
        },
    )


def _long_session_alerted(ticket, minutes=None, **_):
    from consult.live import services

    services.publish(
        "long_session",
        ["role:supervisor"],
        {"ticket_id": ticket.id, "number": ticket.number, "minutes": minutes},
    )


_last_prune = {"at": 0.0}
PRUNE_EVERY = 600.0


def _prune():
    """Every ten minutes at most: the worker's lanes run their tasks every few seconds."""
    import time

    from consult.live import services

    if time.monotonic() - _last_prune["at"] < PRUNE_EVERY:
        return 0
    _last_prune["at"] = time.monotonic()
    return services.prune()


def register(app: Flask) -> None:
    from consult.live import models, views  # noqa: F401 (models: the table)
    from consult.live.settings import LiveSettings

    def setup(app: Flask) -> None:
        @app.before_request
        def remember_cursor():
            # Read before the page's own data: an event committed after this read reaches the
            # page through the stream, so nothing falls between the render and the stream.
            if request.method != "GET" or request.endpoint in (None, "static", "live.stream"):
                return None
            if current_user.is_authenticated:
                from consult.live import services

                g.live_cursor = services.latest_id()
            return None

        @app.context_processor
        def live_context():
            return {"live_cursor": g.get("live_cursor")}

    plugins.install(
        app,
        plugins.Plugin(
            name="live",
            blueprints=(views.bp,),
            settings=LiveSettings,
            worker_tasks=(plugins.WorkerTask("live.prune", _prune, lane="alerts", interval=600),),
            receivers=(
                (signals.ticket_created, _ticket_created),
                (signals.ticket_status_changed, _ticket_status_changed),
                (signals.timeline_entry_added, _timeline_entry_added),
                (signals.help_alert_changed, _help_alert_changed),
                (signals.long_session_alerted, _long_session_alerted),
            ),
            setup=setup,
        ),
    )
