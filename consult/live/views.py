"""GET /live/stream: one Server-Sent Events stream per staff page (or JSON with ?poll=1).

The view only reads the signed-in staff and the cursor, then hands a generator to the server.
A waiting stream sends no query and holds no database connection: the process's hub reads new
events and the sessions' state once for all its streams and wakes them (services.Hub)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user

from consult.extensions import db
from consult.live import services
from consult.live.settings import LiveSettings
from consult.web import passive, public

bp = Blueprint("live", __name__)

MAX_STREAM_SECONDS = 300.0  # then the browser reconnects with Last-Event-ID (and a fresh check)


def _cursor() -> int:
    for raw in (request.headers.get("Last-Event-ID"), request.args.get("after")):
        if raw and raw.isdigit() and len(raw) < 19:
            return int(raw)
    return -1


def _sse(event_id: int | None, name: str | None, data: dict) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if name:
        lines.append(f"event: {name}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


@bp.get("/live/stream")
@public  # a page whose session ended gets an `ended` event, not a login page
@passive  # the stream never refreshes the session's idle timer
def stream():
    from consult.services import totp

    poll = request.args.get("poll") == "1"
    # Someone who must first set up two-factor sign-in has only a password so far: as for a
    # signed-out page, nothing (the request gate does not guard this public endpoint).
    if not current_user.is_authenticated or totp.needs_enrolment(current_user):
        if poll:
            return jsonify(ended=True, events=[], cursor=None)
        return Response(
            "retry: 60000\n\n" + _sse(None, "ended", {"ended": True}),
            mimetype="text/event-stream",
        )
    engine = db.engine
    hub = services.hub_for(engine)
    viewer = services.Viewer.of(current_user)
    after = _cursor()
    if after < 0:
        after = services.latest_id()
    if poll:
        found = hub.events_after(after, fresh=True)
        events = [e.as_dict() for e in found if viewer.may_receive(e.audience)]
        return jsonify(ended=False, events=events, cursor=found[-1].id if found else after)

    core = current_app.config["MADOGUCHI"]
    rule = services.SessionRule(
        idle=timedelta(minutes=int(core["IDLE_TIMEOUT_MINUTES"])),
        absolute=timedelta(hours=int(core["ABSOLUTE_TIMEOUT_HOURS"])),
    )
    token_hash = hashlib.sha256(current_user.session_token.encode("ascii")).hexdigest()
    settings = LiveSettings.current()
    hub.session_check_seconds = settings.session_check_seconds
    # A closed page is noticed at the next write: the heartbeat bounds how long it holds a thread.
    heartbeat = settings.heartbeat_seconds
    db.session.commit()  # give the request's connection back before the long wait

    def generate():
        cursor = after
        started = last_sent = time.monotonic()
        generation = hub.generation
        hub.register(token_hash, rule)
        try:
            # The first thing sent, at once: a page that does not receive it within seconds is
            # behind a buffering proxy and polls instead (live.js).
            yield "retry: 2000\n" + _sse(None, "hello", {"cursor": cursor})
            while not hub.stopped.is_set():
                for item in hub.events_after(cursor):
                    cursor = item.id
                    if viewer.may_receive(item.audience):
                        last_sent = time.monotonic()
                        yield _sse(item.id, None, item.as_dict())
                if hub.session_ended(token_hash):
                    yield _sse(None, "ended", {"ended": True})
                    return
                now = time.monotonic()
                if now - started >= MAX_STREAM_SECONDS:
                    return
                if now - last_sent >= heartbeat:
                    last_sent = now
                    yield ": keepalive\n\n"
                wait = min(heartbeat - (now - last_sent), MAX_STREAM_SECONDS - (now - started))
                generation = hub.wait(generation, max(wait, 0.01))
        finally:
            hub.unregister(token_hash)

    return Response(
        generate(),
        mimetype="text/event-stream",
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"},
    )
