"""The LINE webhook as a bare WSGI endpoint in front of the Flask app.

Why not a Flask view: LINE posts in bursts, and the webhook must answer at once under them (the
benchmark's 50 concurrent deliveries). A Flask request here runs the staff-facing machinery the
webhook has no use for (session cookie, login check, rate limiter, language selection, ORM
session), which cost more CPU than the work itself. The webhook is authenticated by its
signature alone; it verifies it with the SDK, stores the raw body with one INSERT in its own
short transaction, and answers (LINE's verification ping, a body without events, is stored
and answered like any other). Everything else happens in `tasks.expand_pending` and the
processing after it. The URL stays in Flask's map (build only) so it is listed and linkable.
"""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from channels.line import client, services, tasks
from channels.line.models import LineDelivery
from channels.line.settings import LineSettings
from consult.extensions import db
from consult.settings import section
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.line")

PATH = "/channels/line/webhook"
MAX_BODY = 1024 * 1024
# The event count is 0 until the processor has read the body (tasks.expand_pending).
_INSERT_SQL = {  # by the DBAPI's parameter style: psycopg, sqlite3
    "format": "INSERT INTO line_delivery (body, event_count, received_at) VALUES (%s, 0, %s)",
    "pyformat": "INSERT INTO line_delivery (body, event_count, received_at) VALUES (%s, 0, %s)",
    "qmark": "INSERT INTO line_delivery (body, event_count, received_at) VALUES (?, 0, ?)",
}  # LINE sends at most a few hundred events per request; far below this


def _answer(start_response, status: str, message: str | None = None, after=None):
    body = b"{}" if message is None else json.dumps({"message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return _Body(body, after)


class _Body:
    """The response body; `close()` (called by the server once the response is sent) starts
    the processing after the response."""

    def __init__(self, body: bytes, after):
        self._body = body
        self._after = after

    def __iter__(self):
        yield self._body

    def close(self) -> None:
        if self._after is not None:
            self._after()


class WebhookIntake:
    """WSGI middleware: answers POST /channels/line/webhook itself, passes the rest to Flask."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._store_on: tuple | None = None
        from consult.config import CoreSettings

        self.role = section(CoreSettings, app).role

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH:
            return self.wsgi_app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            start_response("405 Method Not Allowed", [("Allow", "POST"), ("Content-Length", "0")])
            return [b""]
        config = section(LineSettings, self.app)
        settings = client.settings_from(config)
        if not settings.configured:
            return _answer(start_response, "503 Service Unavailable", "LINE is not configured")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return _answer(start_response, "413 Request Entity Too Large", "body too large")
        try:
            stream = get_input_stream(environ, max_content_length=MAX_BODY)
            raw = stream.read()
            if len(raw) >= MAX_BODY:
                stream.read(1)  # at the limit: raises if the body goes on
        except RequestEntityTooLarge:  # a chunked body, with no length announced
            return _answer(start_response, "413 Request Entity Too Large", "body too large")
        try:
            body = raw.decode("utf-8")
            services.verify(body, environ.get("HTTP_X_LINE_SIGNATURE"), settings.secret)
        except (UnicodeDecodeError, services.InvalidSignature):
            log.info("line webhook refused: bad or missing signature")
            return _answer(start_response, "400 Bad Request", "invalid signature")
        try:
            with tasks.intake():
                self._store(body)
        except Exception:
            # Not stored: LINE is told so (and redelivers); the body never reaches the log.
            log.exception("line webhook could not be stored")
            return _answer(start_response, "500 Internal Server Error", "not stored")
        after = None
        # The relay processes nothing: the core takes the body (channels.line.transfer).
        if config.process_after_response and self.role != "relay":
            app = self.app

            def after():
                tasks.kick(app)

        elif config.process_after_response:
            # The relay fetches the media of the body now (the core cannot reach LINE).
            app = self.app

            def after():
                from channels.line import transfer

                transfer.kick_fetch(app, body)

        return _answer(start_response, "200 OK", after=after)

    def _store(self, body: str) -> None:
        """One INSERT, committed before the answer: nothing is lost if processing fails.

        On the DBAPI connection, in autocommit: measured under load, SQLAlchemy's statement
        execution cost more CPU than the rest of the webhook together.
        """
        store = self._store_on or self._prepare()
        engine, sql, at = store
        params = (body, at(utcnow()))
        for attempt in (1, 2):
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(sql, params)
                cursor.close()
            except engine.dialect.loaded_dbapi.OperationalError:
                # No pre-ping (a round trip per request): a connection the server closed is
                # found out by the INSERT itself, and the INSERT is tried once more. A delivery
                # stored twice is harmless: its events are deduplicated when expanded.
                connection.invalidate()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                connection.close()
                raise
            connection.close()
            return

    def _prepare(self):
        """PostgreSQL: an engine of the intake's own in autocommit, without pre-ping, so the
        stored body costs one round trip (the INSERT is its own transaction) instead of three
        (ping, INSERT, COMMIT). SQLite: the app's engine, whose connections are in autocommit
        already (consult.app._tune_engine); a lone INSERT takes the write lock by itself."""
        with self.app.app_context():
            main = db.engine
        dialect = main.dialect
        if dialect.name == "postgresql":
            engine = sa.create_engine(
                main.url,
                isolation_level="AUTOCOMMIT",
                pool_size=main.pool.size(),
                max_overflow=10,
            )
            # Closed with the app's engine (a test's teardown, a worker's shutdown).
            sa.event.listen(main, "engine_disposed", lambda _engine: engine.dispose())
        else:
            engine = main
        table = LineDelivery.__table__
        sql = _INSERT_SQL[dialect.paramstyle]
        at = table.c.received_at.type.bind_processor(dialect) or (lambda value: value)
        self._store_on = (engine, sql, at)
        return self._store_on


def install(app: Flask) -> None:
    app.wsgi_app = WebhookIntake(app, app.wsgi_app)
