"""Fixtures: the same suite runs against SQLite and PostgreSQL, over migrated databases."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import jinja2
import psycopg
import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade

from consult import create_app
from consult.extensions import db
from tests import pg
from tests.helpers import PASSWORD, counting_queries, sign_in

BACKENDS = ("sqlite", "postgresql")

# `make test-fast` runs `-m "not slow"`. A test is slow when it lives in one of these folders
# (tests/e2e: Chromium) or uses one of these fixtures (a real gunicorn, IMAP, TLS or browser
# server), so that a new heavy test is marked without anyone remembering to; other heavy modules
# say `pytestmark = pytest.mark.slow` themselves.
SLOW_FOLDERS = {"e2e"}
SLOW_FIXTURES = {
    "gunicorn",
    "dovecot_server",
    "dovecot_tls_server",
    "smtp_tls_server",
    "tls_pki",
    "live_server",
    "mail_live_server",
    "browser",
}
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in SLOW_FOLDERS or SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session):
    """Keep the collector off what every test shares, and let it run less often.

    Each test builds an app (routes, templates, an engine and its compiled SQL) that becomes
    cyclic garbage at its end, so only a full collection frees it; with the default thresholds
    a full collection ran every three tests or so and walked every imported module too: a fifth
    of the suite's time. Freezing what is alive after collection (modules, test functions) takes
    it out of every walk, and larger thresholds make the walks rarer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


# Every test: no outbox message to a citizen names a member of staff in full.
pytest_plugins = ["tests.display_name_guard"]


def base_config(url: str, data_dir: str) -> dict:
    return {
        "DATABASE_URL": url,
        "DATA_DIR": data_dir,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-1234567890",
        "ENV": "testing",
        "PASSWORD_HASH_COST": "fast",
        # Two-factor sign-in is tested on its own (tests/consult/test_two_factor.py); the rest
        # of the suite signs in with a password, as tests.helpers.sign_in does.
        "TOTP_REQUIRED": "none",
        "TESTING": True,
    }


class RequestScopedClient(FlaskClient):
    """A test client whose requests each start with an empty `g`.

    The `app` fixture keeps an app context pushed so tests can use the session between
    requests; Flask reuses that context for requests, and Flask-Login caches the user in `g`.
    Clearing it makes a second login (another client, another user) really another user.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            for name in list(g):
                g.pop(name, None)
        return super().open(*args, **kwargs)


class SharedTemplateCache(jinja2.BytecodeCache):
    """Templates compiled once per test process instead of once per app (each test builds one).

    Every test app has the same Jinja settings and extensions, so their compiled templates are
    the same; Jinja keys them by name and checks the source's checksum, so an edited template is
    compiled again.
    """

    def __init__(self):
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        code = self.store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = SharedTemplateCache()


def _share_url_builders() -> None:
    """Compile each URL rule's builder once per test process instead of once per app.

    Werkzeug generates and compiles a Python function per rule and per app (two, in fact:
    with and without the query string), and an app has ~230 rules: two thirds of building one,
    and each test builds one. The function depends only on what the key below holds (the rule's
    parts, its defaults' names, the defaults folded into the path) and takes the rule as an
    argument, so one compiled function serves the same rule in every app.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    builders: dict = {}

    def shared(self, append_unknown=True):
        defaults = self.defaults or {}
        folded = tuple(
            self._converters[data].to_url(defaults[data])
            for is_dynamic, data in self._trace
            if is_dynamic and data in defaults
        )
        key = (append_unknown, self.rule, tuple(self._trace), tuple(map(str, defaults)), folded)
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = compile_builder(self, append_unknown)
        return builder

    Rule._compile_builder = shared

    # Parsing a rule into its parts (and making its converters) is the same in every app: the
    # parts are only read afterwards, and the default converters keep nothing of their map.
    compile_rule = Rule.compile
    parsed: dict = {}

    def compile_once(self):
        key = (
            self.rule,
            self.subdomain,
            self.host,
            self.merge_slashes,
            self.map.host_matching,
            tuple(sorted(self.map.converters.items())),
        )
        known = parsed.get(key)
        if known is None:
            compile_rule(self)
            parsed[key] = (self._parts, self._trace, self._converters)
            return
        self._parts, self._trace, self._converters = known
        self.arguments.update(self._converters)
        self._build = self._compile_builder(False).__get__(self, None)
        self._build_unknown = self._compile_builder(True).__get__(self, None)

    Rule.compile = compile_once


_share_url_builders()


def _share_compiled_sql():
    """One cache of compiled SQL for every test app of this process, instead of one per engine.

    Each test's app has an engine of its own, so each test compiled every statement it ran
    again (a fifth of a typical test's time, and garbage for the collector). SQLAlchemy keys
    a compiled statement by the dialect object as well; the dialects of these engines differ
    only in identity (same class, same driver, same server), so here they compare equal.
    """
    from sqlalchemy.engine.default import DefaultDialect
    from sqlalchemy.util import LRUCache

    def same(self, other):
        return self is other or (
            type(self) is type(other)
            and self.paramstyle == other.paramstyle
            and self.server_version_info == other.server_version_info
        )

    DefaultDialect.__eq__ = same
    DefaultDialect.__hash__ = lambda self: hash((type(self), self.paramstyle))
    return LRUCache(20_000)


COMPILED_SQL = _share_compiled_sql()


def make_app(url: str, tmp: Path, **overrides):
    config = base_config(url, str(tmp / "data"))
    config.update(overrides)
    app = create_app(config, instance_path=str(tmp / "instance"))
    app.jinja_env.bytecode_cache = TEMPLATES
    app.test_client_class = RequestScopedClient
    app.config["TESTING"] = True
    app.config["WTF_CSRF_ENABLED"] = overrides.get("WTF_CSRF_ENABLED", False)
    with app.app_context():
        db.engine._compiled_cache = COMPILED_SQL
    return app


def migrate_to_head(url: str, tmp: Path) -> None:
    app = make_app(url, tmp)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_server():
    with pg.server_url() as url:
        yield url


@pytest.fixture(scope="session")
def migrated(pg_server, tmp_path_factory):
    """One migrated database per backend: a pristine SQLite file, and a PostgreSQL database."""
    tmp = tmp_path_factory.mktemp("migrated")
    sqlite_file = tmp / "pristine.db"
    migrate_to_head(f"sqlite:///{sqlite_file}", tmp)
    name = f"madoguchi_test_{os.getpid()}"
    pg_url = pg.recreate_database(pg_server, name)
    migrate_to_head(pg_url, tmp)
    yield {"sqlite": sqlite_file, "postgresql": pg_url}
    if pg_url in _resetters:
        _resetters.pop(pg_url)[0].close()
    pg.drop_database(pg_server, name)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def database_url(backend, migrated, tmp_path):
    if backend == "sqlite":
        target = tmp_path / "test.db"
        shutil.copyfile(migrated["sqlite"], target)
        yield f"sqlite:///{target}"
    else:
        yield migrated["postgresql"]
        empty_postgres(migrated["postgresql"])


_resetters: dict[str, tuple[psycopg.Connection, str]] = {}


def _resetter(url: str) -> tuple[psycopg.Connection, str]:
    """This worker's connection for emptying its database, and the query that finds what to empty.

    Kept open across tests (a new connection is a new server process: ~25 ms a test).
    """
    if url in _resetters and not _resetters[url][0].closed:
        return _resetters[url]
    conn = psycopg.connect(url, autocommit=True)
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'alembic_version' ORDER BY tablename"
        )
    ]
    used = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT FROM \"{t}\")" for t in tables)
    _resetters[url] = (conn, used)
    return conn, used


def empty_postgres(url: str) -> None:
    """Bring the test's PostgreSQL database back to its migrated, empty state.

    Every test keeps real commits (other connections, gunicorn and threads see what a test wrote),
    so the database is emptied after it rather than rolled back. ``DELETE`` of every table that
    holds rows, with triggers off (``session_replication_role = replica``: no foreign-key checks,
    so any order; no append-only triggers), and every sequence used restarted, is what
    ``TRUNCATE … RESTART IDENTITY CASCADE`` did, ~50x faster on a few rows: a TRUNCATE creates new
    files for each of the 50-odd tables and their indexes, 0.3-0.5 s a test on this machine. A
    test that wrote nothing leaves nothing to write, so nothing to wait for at the commit.
    """
    try:
        _empty_postgres(*_resetter(url))
    except psycopg.OperationalError:
        # The kept connection was lost (a test that restarted the server, say): once more anew.
        _resetters.pop(url, None)
        _empty_postgres(*_resetter(url))


def _empty_postgres(conn: psycopg.Connection, used: str) -> None:
    with conn.transaction():
        # A connection the test left behind (a background thread still at work) would hold
        # locks that the deletes would wait for, or keep writing while they run; this database
        # is this worker's alone, so end every other session on it first.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("SET LOCAL session_replication_role = replica")
        tables = [row[0] for row in conn.execute(used)]
        if tables:
            conn.execute("; ".join(f'DELETE FROM "{t}"' for t in tables))
        conn.execute(
            "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)"
            " FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
        )


@pytest.fixture
def app_factory(database_url, tmp_path):
    """Build apps over the test database (several, to play several servers)."""
    apps = []

    def build(**overrides):
        app = make_app(database_url, tmp_path, **overrides)
        apps.append(app)
        return app

    yield build
    # Work that a request left running after its response (LINE's "line-kick" processing) ends
    # before the test's engines are disposed and its database emptied: on a loaded machine it can
    # outlive the test, and its killed connection would be collected, and reported, in another.
    for thread in threading.enumerate():
        if thread.name == "line-kick":
            thread.join(timeout=30)
    from consult.live import services as live_services

    for app in apps:
        with app.app_context():
            db.session.remove()
            # The live watcher first: a read of its in flight at dispose would keep a
            # connection of the old pool, collected (and reported) in another test.
            live_services.end_streams(db.engine)
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    app = app_factory()
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


# --- factories ------------------------------------------------------------------------------

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


@pytest.fixture
def make_department(app):
    from consult.services import staff as staff_service

    def make(code=None, name=None, **kw):
        n = _next()
        department = staff_service.create_department(
            None, code=code or f"dept{n}", name=name or f"テスト課{n}", **kw
        )
        db.session.commit()
        return department

    return make


@pytest.fixture
def make_category(app):
    from consult.services import staff as staff_service

    def make(name=None, code=None):
        n = _next()
        category = staff_service.save_category(
            None, name=name or f"分類{n}", code=code or f"cat{n}"
        )
        db.session.commit()
        return category

    return make


SURNAMES = ["やまだ / Yamada", "さとう / Sato", "たなか / Tanaka", "すずき / Suzuki"]


@pytest.fixture
def make_staff(app, make_department):
    from consult.services import staff as staff_service

    def make(role="consultant", login=None, department=None, branch_office=None, **kw):
        n = _next()
        if role == "officer" and department is None:
            department = make_department()
        if role == "branch" and branch_office is None:
            from consult.models import BranchOffice

            branch_office = BranchOffice(name=f"支所{n}", name_en=f"Branch {n}", active=True)
            db.session.add(branch_office)
            db.session.flush()
        staff = staff_service.create_staff(
            None,
            login=login or f"{role}{n}",
            full_name=kw.pop("full_name", f"試験 太郎{n}"),
            display_name=kw.pop("display_name", SURNAMES[n % len(SURNAMES)]),
            role=role,
            password=kw.pop("password", PASSWORD),
            department_id=department.id if department else None,
            branch_office_id=branch_office.id if branch_office else None,
        )
        db.session.commit()
        return staff

    return make


@pytest.fixture
def login_as(client, make_staff):
    """A new member of staff, signed in on `client` (tests.helpers.sign_in)."""

    def do(role="consultant", **kw):
        staff = make_staff(role, **kw)
        sign_in(client, staff)
        return staff

    return do


@pytest.fixture
def count_queries(app):
    """Count the SQL an app sends, to pin "N queries whatever the page" claims:

        with count_queries() as queries:
            client.get("/tickets")
        assert queries.count == 9, queries

    Counts on the test's app unless given another (`count_queries(line_app)`).
    """

    def counting(target=None):
        return counting_queries(target or app)

    return counting


@pytest.fixture
def make_ticket(app, make_staff):
    from consult.models import Channel
    from consult.services import tickets
    from consult.services.actor import Actor

    cache = {}

    def make(**overrides):
        if "actor" in overrides:
            actor = overrides.pop("actor")
        else:
            if "staff" not in cache:
                cache["staff"] = make_staff("consultant")
            actor = Actor(cache["staff"], "127.0.0.1")
        fields = {"channel": Channel.COUNTER, "subject": "住民票の写しについて"}
        fields.update(overrides)
        ticket = tickets.create_ticket(actor, **fields)
        db.session.commit()
        return ticket

    return make


@pytest.fixture(scope="session")
def tmpdir_session():
    path = Path(tempfile.mkdtemp(prefix="madoguchi-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- a real SMTP server on 127.0.0.1 ------------------------------------------------------------


class SmtpSink:
    """What the local SMTP server received: (envelope recipients, parsed message) pairs."""

    def __init__(self):
        self.messages: list[tuple[list[str], object]] = []
        self.reject_with: str | None = None  # e.g. "550 5.1.1 no such user" or "451 try later"
        self.raw: list[bytes] = []  # the bytes as sent, for decoders other than the stdlib's

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_with:
            return self.reject_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        from email import policy
        from email.parser import BytesParser

        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        self.raw.append(envelope.original_content)
        return "250 Message accepted"


def _start_smtp(sink: SmtpSink, **controller_options):
    """aiosmtpd on a free port (Controller(port=0) would connect back to port 0)."""
    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port, **controller_options)
    controller.start()
    sink.port = port
    sink.settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_SECURITY": "none"}
    return controller


@pytest.fixture
def smtp_server():
    sink = SmtpSink()
    controller = _start_smtp(sink)
    yield sink
    controller.stop()


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory):
    """A throwaway CA and server certificates for 127.0.0.1 (see tests/tls.py)."""
    from tests.tls import make_pki

    return make_pki(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_tls_server(tls_pki):
    """Start an SMTP server over TLS: `security` "ssl" (SMTPS) or "starttls" (required).

    Its settings trust the test CA; `wrong_name` serves a certificate of that CA for another host.
    """
    controllers = []

    def start(security: str, *, wrong_name: bool = False) -> SmtpSink:
        context = tls_pki.server_context(wrong_name=wrong_name)
        if security == "ssl":
            options = {"ssl_context": context}
        else:
            options = {"tls_context": context, "require_starttls": True}
        sink = SmtpSink()
        controllers.append(_start_smtp(sink, **options))
        sink.settings.update(SMTP_SECURITY=security, MAIL_CA_FILE=str(tls_pki.ca_file))
        return sink

    yield start
    for controller in controllers:
        controller.stop()


def install_channel(app, name: str, deliver) -> None:
    """Give a test app a channel of its own whose outbox rows `deliver` takes."""
    from consult import plugins

    plugins.install(
        app, plugins.Plugin(name=f"test-{name}", channel=plugins.Channel(name, name, deliver))
    )


@pytest.fixture(scope="session")
def redis_server():
    from tests.redis_server import throwaway_redis

    with throwaway_redis() as url:
        yield url


@pytest.fixture
def redis_url(redis_server):
    """The throwaway Redis, emptied for this test."""
    import redis

    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(scope="session")
def ldap_directory():
    """A throwaway OpenLDAP server (Debian's slapd) with a small city's directory in it."""
    from tests.ldap_server import throwaway_slapd

    with throwaway_slapd() as directory:
        yield directory
