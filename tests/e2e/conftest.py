"""End-to-end fixtures: the real app served over HTTP, driven by Debian's Chromium via Playwright.

Chromium is never downloaded: the tests use /usr/bin/chromium and FAIL (not skip) without it.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from consult.extensions import db
from tests.helpers import PASSWORD, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Chromium (156) warms up the address bar's two WebUI popups in every new window, each a renderer
# of its own that headless never shows: about 40 % of the browser's CPU in the suite.
UNUSED_FEATURES = ["WebUIOmniboxPopup", "WebUIOmniboxAimPopup"]
VIEWPORT = {"width": 1366, "height": 768}
# Where the tests keep their screenshots to be looked at (docs/screenshots for the README).
SCREENSHOTS = os.environ.get("MADOGUCHI_TEST_SCREENSHOTS")
# Chromium logs CSP violations to the console; report them explicitly too, in case it stops.
REPORT_CSP = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    app: object
    url: str
    _counter: list[int] = field(default_factory=lambda: [0])

    def _next(self) -> int:
        self._counter[0] += 1
        return self._counter[0]

    def make_staff(self, role: str = "consultant", **kw):
        """A member of staff, through the service; returns (login, password)."""
        from consult.services import staff as staff_service

        n = self._next()
        with self.app.app_context():
            staff = staff_service.create_staff(
                None,
                login=kw.pop("login", f"e2e-{role}{n}"),
                full_name=kw.pop("full_name", f"窓口 花子{n}"),
                display_name=kw.pop("display_name", "まどぐち / Madoguchi"),
                role=role,
                password=kw.pop("password", PASSWORD),
                department_id=kw.pop("department_id", None),
                branch_office_id=kw.pop("branch_office_id", None),
            )
            db.session.commit()
            login = staff.login
            db.session.remove()
        return login, PASSWORD

    def make_category(self, name: str | None = None) -> str:
        from consult.services import staff as staff_service

        n = self._next()
        with self.app.app_context():
            category = staff_service.save_category(
                None, name=name or f"各種手続き{n}", code=f"e2e-cat{n}"
            )
            db.session.commit()
            name = category.name
            db.session.remove()
        return name

    def make_citizen_with_ticket(self, *, name: str, phone: str, subject: str) -> tuple[int, str]:
        """A citizen known by phone, with one earlier phone ticket; returns (citizen id, number)."""
        from consult.models import Channel
        from consult.services import citizens, tickets
        from consult.services.actor import SYSTEM

        with self.app.app_context():
            citizen = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name=name, phone=phone))
            ticket = tickets.create_ticket(
                SYSTEM, channel=Channel.PHONE, subject=subject, citizen=citizen
            )
            db.session.commit()
            result = citizen.id, ticket.number
            db.session.remove()
        return result

    def ticket(self, number: str) -> dict:
        """What the database holds about a ticket, read outside any request."""
        from consult.services import tickets
        from consult.services.actor import SYSTEM

        with self.app.app_context():
            item = tickets.get_ticket(SYSTEM, number, audit_view=False)
            result = {
                "status": item.status.value,
                "citizen_id": item.citizen_id,
                "resolution_summary": item.resolution_summary,
            }
            db.session.remove()
        return result

    def deliver_mail(self):
        """Run the outbox worker once, as `madoguchi worker` would; returns its report."""
        from consult.services import outbox

        with self.app.app_context():
            report = outbox.run_once()
            db.session.remove()
        return report


class _Counted:
    """A response body passed through as it comes, calling `done` once when closed."""

    def __init__(self, body, done):
        self.body, self.done, self.closed = body, done, False

    def __iter__(self):
        # Done when the body is sent, not when the server closes it: werkzeug first reads
        # what is left on the socket, which waits for a keep-alive client to hang up.
        try:
            yield from self.body
        finally:
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.done()


class _InFlight:
    """WSGI middleware that counts running requests, so teardown can wait for them."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.closing = False
        self.running = 0
        self.paths: list[str] = []
        self.idle = threading.Condition()

    def __call__(self, environ, start_response):
        with self.idle:
            if self.closing:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"closing"]
            self.running += 1
            path = environ.get("PATH_INFO", "")
            self.paths.append(path)
        done = lambda: self._done(path)  # noqa: E731
        try:
            result = self.wsgi_app(environ, start_response)
        except BaseException:
            done()
            raise
        # The count ends when the server closes the body (Flask's teardown runs on close), so
        # it covers all of the app's work; the body streams through (the live channel's SSE).
        return _Counted(result, done)

    def _done(self, path: str) -> None:
        with self.idle:
            self.paths.remove(path)
            self.running -= 1
            self.idle.notify_all()

    def close_and_drain(self, timeout: float) -> None:
        with self.idle:
            self.closing = True
            drained = self.idle.wait_for(lambda: self.running == 0, timeout=timeout)
        assert drained, f"{self.running} request(s) still running after {timeout} s: {self.paths}"


@contextmanager
def _serve(app_factory, **overrides):
    """The app over HTTP on a free port; PUBLIC_URL (links in mail) points at it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {"WTF_CSRF_ENABLED": True, "DISPLAY_REFRESH_SECONDS": 2, "PUBLIC_URL": url}
    # Live streams of closed pages end within a second, so the server drains before the next test.
    settings.update(LIVE_HEARTBEAT_SECONDS=1, LIVE_SESSION_CHECK_SECONDS=1)
    settings.update(overrides)
    app = app_factory(**settings)
    gate = _InFlight(app.wsgi_app)
    app.wsgi_app = gate
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = serve_in_thread(server, "e2e-live-server")
    try:
        yield LiveServer(app=app, url=url)
    finally:
        # A request still running (a poll the closed page sent) would race the next test's
        # TRUNCATE for table locks: refuse new requests, let the running ones finish.
        gate.closing = True
        # Held live streams (SSE) end now, not at their next heartbeat.
        from consult.live import services as live_services

        with app.app_context():
            live_services.end_streams(db.engine)
        gate.close_and_drain(timeout=10)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def live_server(app_factory):
    with _serve(app_factory) as server:
        yield server


@pytest.fixture
def mail_live_server(app_factory, smtp_server):
    """The live server sending its mail to the local SMTP server (`smtp_server.messages`).

    Nothing is sent until the test runs the outbox: `mail_live_server.deliver_mail()`.
    """
    with _serve(app_factory, **smtp_server.settings) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    # Fail, never skip: a missing browser must not turn the suite green.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's 'chromium' package"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = _launch(playwright)
        yield chromium
        chromium.close()


def _launch(playwright):
    """Chromium with the features it does not need here switched off as well as Playwright's.

    Chromium reads only the last ``--disable-features`` it is given, and Playwright passes its
    own first; the browser's chrome://version shows that list, to which ours is added.
    """
    first = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        page = first.new_page()
        page.goto("chrome://version")
        line = page.locator("#command_line").inner_text()
    finally:
        first.close()
    switch = "--disable-features="
    defaults = [
        feature
        for arg in line.split()
        if arg.startswith(switch)
        for feature in arg.removeprefix(switch).split(",")
    ]
    assert defaults, f"Playwright's {switch} not found in chrome://version: {line}"
    args = [*CHROMIUM_ARGS, switch + ",".join([*defaults, *UNUSED_FEATURES])]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


class ConsoleWatch:
    """Console errors, page errors and CSP violations seen by a page; any of them fails a test."""

    def __init__(self):
        self.problems: list[str] = []
        self._expected: list[re.Pattern] = []

    def expect(self, pattern: str) -> None:
        """One message a test provokes on purpose (and names): it is not a problem."""
        self._expected.append(re.compile(pattern))

    def attach(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

    def _on_console(self, message) -> None:
        text = message.text
        if message.type == "error" or "Content Security Policy" in text:
            location = message.location.get("url", "")
            if any(p.search(f"{text} {location}") for p in self._expected):
                return
            self.problems.append(f"console {message.type}: {text} ({message.location})")


@pytest.fixture
def console_watch():
    watch = ConsoleWatch()
    yield watch
    assert not watch.problems, "\n".join(watch.problems)


@pytest.fixture
def new_page(browser, console_watch):
    """Pages in fresh contexts (a logged-in desk, a public display), all watched."""
    contexts = []

    def make():
        context = browser.new_context(locale="ja-JP", viewport=VIEWPORT)
        context.set_default_timeout(10_000)
        contexts.append(context)
        context.add_init_script(script=REPORT_CSP)
        page = context.new_page()
        console_watch.attach(page)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def keep_screenshot(page, name: str, *, full_page: bool = True) -> None:
    """Keep a screenshot of the page in MADOGUCHI_TEST_SCREENSHOTS, when it is set.

    Only then: a screenshot nobody looks at checks nothing, and a full-page one costs Chromium and
    the test some 0.7 s of CPU (about 80 a run, both databases: some 50 s of the two cores).
    """
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=full_page)


# --- accessibility: axe-core (vendored, see tests/fixtures/axe/SOURCE.md) -----------------------

AXE = Path(__file__).resolve().parent.parent / "fixtures" / "axe" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page) -> list[str]:
    """Run axe-core (WCAG 2.1 A and AA rules) on the page as it is now; one line per violation.

    The script is evaluated through the DevTools protocol, which the page's CSP does not govern,
    so the page under test keeps its real CSP (and the console watch stays meaningful).
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG_TAGS,
    )
    lines = []
    for violation in result["violations"]:
        targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"])
        summaries = {node.get("failureSummary", "") for node in violation["nodes"]}
        lines.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} -> {targets}"
            + "".join(f"\n    {s.strip()}" for s in summaries if s)
        )
    return lines


def assert_accessible(page, what: str = "") -> None:
    """Fail listing every WCAG 2.1 AA violation axe-core finds on the current page."""
    violations = axe_violations(page)
    label = what or page.url
    assert not violations, f"axe-core on {label}:\n" + "\n".join(violations)
