"""The app factory: the only module that imports the other packages and plugs them in."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import werkzeug.routing
from flask import Flask, abort, flash, g, redirect, render_template, request, url_for
from flask import Request as FlaskRequest
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import cached_property

from consult import config as config_module
from consult import settings as settings_module
from consult.extensions import csrf, db, login_manager, migrate
from consult.models import Role
from consult.services import auth
from consult.services.normalize import format_phone, strip_controls
from consult.timeutil import format_duration, format_tokyo, to_tokyo

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("madoguchi")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class Rule(werkzeug.routing.Rule):
    """A URL rule whose builders are compiled at its first ``url_for``.

    Werkzeug writes and compiles two Python functions per rule as the rule is added: with some
    460 rules, 0.3 s of building the app, paid again by every process (a command, a gunicorn
    worker) although each builds URLs for few of them.
    """

    def _compile_builder(self, append_unknown: bool = True):
        compile_now = super()._compile_builder
        attribute = "_build_unknown" if append_unknown else "_build"

        def build(rule, **values):
            real = compile_now(append_unknown)
            setattr(rule, attribute, real.__get__(rule, None))
            return real(rule, **values)

        return build


class Request(FlaskRequest):
    """Query strings without control characters, for every view at once.

    Forms clean their own fields (consult/forms.py) and say so; a search or filter in the URL
    is read straight from `request.args`, and a NUL there reached PostgreSQL as a query
    parameter (a 500). Tabs and line breaks become spaces: a URL value is one line.
    """

    @cached_property
    def args(self) -> ImmutableMultiDict:
        return ImmutableMultiDict(
            (strip_controls(key, multiline=False), strip_controls(value, multiline=False))
            for key, value in super().args.items(multi=True)
        )


def create_app(overrides: dict | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(
        "consult",
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(Path(__file__).parent / "static"),
    )
    app.request_class = Request
    app.url_rule_class = Rule
    store = config_module.load_settings(Path(app.instance_path), overrides)
    app.extensions[settings_module.EXTENSION_KEY] = store
    app.config["MADOGUCHI"] = store.flat()
    core = store.sections[config_module.CoreSettings]
    app.config.update(config_module.flask_config(core))
    if core.proxy_count:
        count = core.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    auth.configure_hasher(core.password_hash_cost)
    _configure_logging(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    _init_login(app)
    with app.app_context():
        _tune_engine(db.engine)

    from consult import live, plugins, views, voice

    plugins.init_app(app)
    views.register(app)
    live.register(app)
    voice.register(app)
    from consult.services import report_rollup

    report_rollup.register(app)
    from consult.services import search

    search.register()

    # The other packages plug in here; consult itself never imports them.
    from channels import register as register_channels

    register_channels(app)
    import handoff
    from faq import register as register_faq

    handoff.register(app)
    register_faq(app)
    import api

    api.register(app)
    from consult import transfer

    transfer.register(app)  # last: the role decides which of the above a request may reach
    for name in app.extensions[settings_module.EXTENSION_KEY].unknown_variables():
        log.warning("MADOGUCHI_%s is not a setting of madoguchi or its plugins; ignored", name)

    from consult import i18n

    i18n.init_app(app)  # after the packages added their catalogs

    _install_request_hooks(app)
    _install_error_pages(app)
    _install_template_helpers(app)
    return app


def _configure_logging(app: Flask) -> None:
    from consult.logging import install_log_filter

    install_log_filter()
    if not logging.getLogger("madoguchi").handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )


def _tune_engine(engine) -> None:
    """SQLite: WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE.

    A deferred SQLite transaction that reads and then writes can fail at once with "database is
    locked" when another writer committed meanwhile; taking the write lock at BEGIN makes
    concurrent writers queue instead (bounded by the busy timeout).
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Readers that never write (the live channel's streams) must not queue for the lock.
        if connection.get_execution_options().get("madoguchi_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "ログインしてください。"
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # our server-side sessions do this job

    core = settings_module.section(config_module.CoreSettings, app)
    idle = timedelta(minutes=core.idle_timeout_minutes)
    absolute = timedelta(hours=core.absolute_timeout_hours)

    @login_manager.user_loader
    def load_user(token: str):
        from consult.web import is_passive_request

        return auth.load_session(token, idle, absolute, touch=not is_passive_request())


# What a person who must still set up two-factor sign-in may reach (besides public pages).
# The password page too: an administrator-set password is changed first, then two-factor set up.
ENROLMENT_ENDPOINTS = frozenset({"auth.two_factor", "auth.logout", "account.password"})
# What a branch office's account reaches besides the views that name its role.
BRANCH_ENDPOINTS = ENROLMENT_ENDPOINTS | {"auth.home"}


def _install_request_hooks(app: Flask) -> None:
    from consult.services import totp
    from consult.web import apply_body_limit, is_public_endpoint

    @app.url_value_preprocessor
    def body_limit(_endpoint, _values):
        # Runs before every before_request hook (CSRF reads the form in one).
        apply_body_limit()

    @app.before_request
    def require_login():
        g.request_started = True
        if is_public_endpoint(request.endpoint):
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.must_change_password and not _may_pass_while_must_change():
            # A password an administrator chose: nothing else until the person chose their own.
            # The live stream (a page's own request) is answered as usual, never redirected.
            flash(
                "管理者が設定したパスワードのままです。新しいパスワードを設定してください。", "info"
            )
            return redirect(url_for("account.password"))
        if request.endpoint not in ENROLMENT_ENDPOINTS and totp.needs_enrolment(current_user):
            return redirect(url_for("auth.two_factor"))
        if current_user.role == Role.BRANCH and not _branch_may_use(request.endpoint):
            abort(403)
        return None

    def _branch_may_use(endpoint: str | None) -> bool:
        """A branch office's account is refused every page by default: it reaches only its own
        account pages, the home redirect, and views that name Role.BRANCH themselves
        (roles_required), so that a page added later for "every signed-in person" does not
        open to a terminal in a branch office."""
        from consult.web import ROLES_ATTR

        if endpoint in BRANCH_ENDPOINTS:
            return True
        view = app.view_functions.get(endpoint or "")
        return Role.BRANCH in getattr(view, ROLES_ATTR, ())

    def _may_pass_while_must_change() -> bool:
        from consult.views.account import WHILE_MUST_CHANGE
        from consult.web import is_passive_request

        return request.endpoint in WHILE_MUST_CHANGE or is_passive_request()

    @app.after_request
    def commit_and_secure(response):
        # Protected persons (支援措置): the second line behind the masked pages. Whatever a page,
        # an export or a JSON answer holds of a protected person's whereabouts that this reader
        # may not see is replaced before it leaves (consult/services/protection.py).
        _scrub_protected(response)
        # One commit per request, in one place; an error response changes nothing.
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            headers["Cache-Control"] = "no-store"
        if request.is_secure:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        return response


SCRUBBED_TYPES = (
    "text/html",
    "text/plain",
    "text/csv",
    "text/calendar",
    "application/json",
    "application/problem+json",
)


def _scrub_protected(response) -> None:
    """Hide protected persons' whereabouts from a response the reader may not see them in.

    Streams (the live channel, files sent as they are) are left alone: the live channel carries
    ids and labels only, and files are attachments behind the ticket's own rule."""
    if response.direct_passthrough or response.is_streamed:
        return
    # A server error's page holds no one's data, and must not depend on the database (it may
    # be the very thing that failed); a failing check on any other page fails closed into it.
    if response.status_code >= 500:
        return
    if response.mimetype not in SCRUBBED_TYPES or request.endpoint == "static":
        return
    from consult.services import protection
    from consult.services.actor import Actor

    staff = current_user if current_user.is_authenticated else None
    secrets = protection.hidden_secrets(Actor(staff))
    if not secrets:
        return
    body = response.get_data(as_text=True)
    # JSON is read decoded: a non-ASCII address or a full-width number sent as \u escapes is
    # still the address, so a JSON answer is scrubbed value by value.
    json_types = ("application/json", "application/problem+json")
    cleaned = secrets.scrub_json(body) if response.mimetype in json_types else secrets.scrub(body)
    if cleaned != body:
        response.set_data(cleaned)


def _install_error_pages(app: Flask) -> None:
    def page(code: int, template: str):
        def handler(error):
            db.session.rollback()
            return render_template(f"errors/{template}.html", error=error), code

        return handler

    for code in (400, 403, 404, 405, 413, 429):
        app.register_error_handler(code, page(code, str(code)))

    # Domain errors a view did not handle itself: the same answer everywhere, written once.
    # Not found and not allowed answer alike where the record's existence must not leak
    # (the services raise NotFound for both).
    from consult.services.errors import NotFound, PermissionDenied

    app.register_error_handler(NotFound, page(404, "404"))
    app.register_error_handler(PermissionDenied, page(403, "403"))

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        db.session.rollback()
        return render_template("errors/400.html", csrf=True), 400

    @app.errorhandler(500)
    def server_error(error):
        # The database may be the very thing that failed (down, unreachable): this page must
        # not query it. render_template would run the context processors, which load the
        # signed-in user and the navigation from the database; the template itself needs
        # nothing but url_for.
        try:
            db.session.rollback()
        except Exception:
            log.warning("rollback after a server error failed", exc_info=True)
        return app.jinja_env.get_template("errors/500.html").render(), 500


def _install_template_helpers(app: Flask) -> None:
    from consult import plugins
    from consult.services import totp

    app.jinja_env.filters["tokyo"] = format_tokyo
    app.jinja_env.filters["tokyo_wd"] = lambda value: format_tokyo(value, with_weekday=True)
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.filters["tokyo_time"] = lambda value: (
        to_tokyo(value).strftime("%H:%M") if value else ""
    )
    app.jinja_env.filters["phone"] = format_phone
    # A calendar day as Japanese staff write it: 2025年3月31日.
    app.jinja_env.filters["jday"] = lambda day: (
        f"{day.year}年{day.month}月{day.day}日" if day else ""
    )

    @app.context_processor
    def inject():
        links = []
        # Someone who must first set up two-factor sign-in is offered no menu (nor help button,
        # nor live feeds) that the request gate would refuse.
        pending = current_user.is_authenticated and totp.needs_enrolment(current_user)
        if current_user.is_authenticated and not pending:
            links = [
                link for link in plugins.registry(app).nav_links if current_user.role in link.roles
            ]
        return {
            "centre_name": settings_module.section(config_module.CoreSettings, app).centre_name,
            "nav_links": links,
            "enrolment_pending": pending,
            "staff_scripts": [
                url_for(script.endpoint, filename=script.filename)
                for script in plugins.registry(app).staff_scripts
            ],
        }

    app.jinja_env.globals["flash"] = flash

    def contact_of(citizen):
        """A citizen's whereabouts as this reader may see them (支援措置: hidden, flagged)."""
        from consult.services import protection
        from consult.services.actor import Actor

        staff = current_user if current_user.is_authenticated else None
        return protection.masked_contact(Actor(staff), citizen)

    app.jinja_env.globals["contact_of"] = contact_of
