"""The live channel: who receives what, cursors, sessions, and two servers over one database.

The stream is read raw (JSON of ?poll=1, or the SSE text from a real server), not through a
page, so an event a person must not receive cannot hide behind the page's rendering.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from consult.extensions import db
from consult.live import services as live
from consult.live.models import LiveEvent
from consult.models import StaffSession, Status
from consult.services import tickets
from consult.services.actor import Actor
from consult.settings import override
from consult.timeutil import utcnow
from handoff import services as handoffs
from handoff.models import Response
from tests.consult.http import call
from tests.helpers import PASSWORD, serve_in_thread, sign_in

SUMMARY = "転入届の記載について市民課の確認が必要です。"
SUBJECT = "介護保険の認定について相談したい"


@pytest.fixture
def centre(app, make_staff, make_department, make_ticket):
    shimin = make_department(name="市民課")
    zeimu = make_department(name="税務課")
    people = {
        "consultant": make_staff("consultant", full_name="相談 花子"),
        "supervisor": make_staff("supervisor"),
        "officer": make_staff("officer", department=shimin, full_name="窓口 一郎"),
        "stranger": make_staff("officer", department=zeimu),
        "support": make_staff("support"),
    }
    people["ticket"] = make_ticket(subject=SUBJECT, actor=Actor(people["consultant"]))
    people["shimin"], people["zeimu"] = shimin, zeimu
    db.session.commit()
    return people


def hand_over(centre, department=None):
    [handoff] = handoffs.create(
        Actor(centre["consultant"]),
        centre["ticket"],
        [handoffs.Request((department or centre["shimin"]).id, SUMMARY, Response.VISIT)],
    )
    db.session.commit()
    return handoff


def poll(app, client, after=0) -> dict:
    response = call(app, client, "GET", f"/live/stream?poll=1&after={after}")
    assert response.status_code == 200
    raw = response.get_data(as_text=True)
    # No personal data in anything a page receives: not the case's subject, not the handoff's
    # summary, not a name.
    for secret in (SUBJECT, SUMMARY, "相談 花子", "窓口 一郎"):
        assert secret not in raw
    return json.loads(raw)


def kinds(data) -> list[str]:
    return [event["kind"] for event in data["events"]]


def test_each_person_receives_only_their_events(app, centre):
    clients = {
        role: sign_in(app, centre[role])
        for role in ("officer", "stranger", "consultant", "support", "supervisor")
    }
    handoff = hand_over(centre)

    mine = poll(app, clients["officer"])
    assert kinds(mine) == ["handoff"]  # the department's handoff, not the ticket's timeline
    payload = mine["events"][0]["payload"]
    assert payload["handoff_id"] == handoff.id
    assert payload["department_id"] == centre["shimin"].id
    assert payload["state"] == "requested" and payload["number"] == centre["ticket"].number

    assert poll(app, clients["stranger"])["events"] == []  # another department: nothing
    assert poll(app, clients["support"])["events"] == []  # not the support room's business

    desk = poll(app, clients["consultant"])
    assert "handoff" in kinds(desk) and "ticket.timeline" in kinds(desk)
    assert "handoff" in kinds(poll(app, clients["supervisor"]))

    # A ticket of the desk alone (a status change) never reaches an officer, even the one whose
    # department has a handoff on it.
    cursor = mine["cursor"]
    tickets.change_status(Actor(centre["consultant"]), centre["ticket"], Status.IN_PROGRESS)
    db.session.commit()
    assert poll(app, clients["officer"], cursor)["events"] == []
    assert "ticket.status" in kinds(poll(app, clients["consultant"], cursor))


def test_a_cursor_gives_what_was_missed_in_order_and_once(app, centre):
    client = sign_in(app, centre["officer"])
    start = poll(app, client)["cursor"]
    first = hand_over(centre)
    second = hand_over(centre)
    data = poll(app, client, start)
    assert [e["payload"]["handoff_id"] for e in data["events"]] == [first.id, second.id]
    ids = [e["id"] for e in data["events"]]
    assert ids == sorted(ids)
    handoffs.accept(Actor(centre["officer"]), first)
    db.session.commit()
    again = poll(app, client, data["cursor"])
    assert [(e["payload"]["handoff_id"], e["payload"]["state"]) for e in again["events"]] == [
        (first.id, "accepted")
    ]
    assert poll(app, client, again["cursor"])["events"] == []


def test_an_ended_session_is_told_and_the_stream_keeps_no_session_alive(app, centre):
    client = sign_in(app, centre["officer"])
    session = db.session.scalar(
        sa.select(StaffSession).where(StaffSession.staff_id == centre["officer"].id)
    )
    seen = utcnow() - timedelta(minutes=5)
    session.last_seen_at = seen
    db.session.commit()
    assert poll(app, client)["ended"] is False
    db.session.expire_all()
    assert session.last_seen_at == seen  # a page's own poll is not the user's activity

    session.last_seen_at = utcnow() - timedelta(hours=2)  # idle for longer than allowed
    db.session.commit()
    assert poll(app, client)["ended"] is True


def test_publish_refuses_free_text_and_prune_keeps_a_day(app, centre):
    with pytest.raises(ValueError):
        live.publish("note", ["desk"], {"body": "長い自由記述" * 20})
    db.session.rollback()
    old = live.publish("x", ["desk"], {"n": 1})
    old.created_at = utcnow() - timedelta(days=2)
    recent = live.publish("x", ["desk"], {"n": 2})
    old_id, recent_id = old.id, recent.id
    db.session.commit()
    assert live.prune() == 1
    db.session.commit()
    remaining = db.session.scalars(sa.select(LiveEvent.id)).all()
    assert recent_id in remaining and old_id not in remaining
    from consult import plugins

    assert "live.prune" in [task.name for task in plugins.registry(app).worker_tasks]


# --- real servers ------------------------------------------------------------------------------


class Server:
    """The app on a real threaded WSGI server on 127.0.0.1 (as `madoguchi serve` runs it)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = serve_in_thread(self.server)

    def session_for(self, staff) -> requests.Session:
        login = staff.login
        db.session.commit()  # SQLite: the test's own transaction must not hold the write lock
        browser = requests.Session()
        response = browser.post(
            self.url + "/login",
            data={"login": login, "password": PASSWORD},
            allow_redirects=False,
        )
        assert response.status_code == 302
        return browser

    def stop(self):
        self.server.shutdown()


class Stream:
    """A held SSE connection, read in a thread; `events` fills as they arrive."""

    def __init__(self, browser, url, last_event_id=None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = browser.get(url + "/live/stream", headers=headers, stream=True, timeout=30)
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        # The stream has no length, so http.client handed the socket over to the response's
        # reader (urllib3 → http.client → BufferedReader → SocketIO) and left the connection.
        self._socket = self.response.raw._fp.fp.raw._sock
        self.events: list[dict] = []
        self.raw: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        block: dict = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                self.raw.append(line)
                if line == "":
                    if "data" in block:
                        self.events.append(block)
                    block = {}
                elif line.startswith(("id: ", "event: ", "data: ")):
                    key, _, value = line.partition(": ")
                    block[key] = json.loads(value) if key == "data" else value
        except Exception as error:  # closed under us: the test reads what came
            self.closed_by = error

    def wait_for(self, test, timeout=8.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events if test(e)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such event in {self.events}")

    def close(self):
        """Drop the connection at once, as a closed page does.

        Closing the response alone waits for the reading thread to let go of the socket, which it
        does at the server's next write (a heartbeat, 15 s): three closes were 45 s of a test.
        """
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self.response.close()


@pytest.fixture
def servers():
    running = []

    def start(app):
        server = Server(app)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.mark.slow
def test_two_servers_over_one_database_and_a_reconnect_loses_nothing(
    app, app_factory, centre, servers
):
    """An event committed through one app reaches a stream held by another app (another
    server: on PostgreSQL through NOTIFY, on SQLite by reading the table); a stream reopened
    with Last-Event-ID gets what it missed, once."""
    watching = servers(app_factory(LIVE_SESSION_CHECK_SECONDS=1))
    acting = app_factory()
    officer = watching.session_for(centre["officer"])
    stranger = watching.session_for(centre["stranger"])
    shimin_id, ticket_id = centre["shimin"].id, centre["ticket"].id
    consultant_id = centre["consultant"].id
    db.session.commit()
    stream = Stream(officer, watching.url)
    other = Stream(stranger, watching.url)
    time.sleep(0.3)  # let both streams take their cursor (the connection is open already)

    with acting.app_context():
        from consult.models import Staff, Ticket

        [first] = handoffs.create(
            Actor(db.session.get(Staff, consultant_id)),
            db.session.get(Ticket, ticket_id),
            [handoffs.Request(shimin_id, SUMMARY, Response.VISIT)],
        )
        db.session.commit()
        first_id = first.id
        db.session.remove()

    started = time.monotonic()
    [event] = stream.wait_for(lambda e: e["data"].get("kind") == "handoff")
    assert time.monotonic() - started < 3
    assert event["data"]["payload"]["handoff_id"] == first_id
    cursor = int(event["id"])
    stream.close()

    # While the page is away, two more changes.
    hand_over(centre)
    hand_over(centre)
    reopened = Stream(officer, watching.url, last_event_id=cursor)
    got = reopened.wait_for(lambda e: len([x for x in reopened.events if "id" in x]) >= 2)
    time.sleep(0.5)
    ids = [int(e["id"]) for e in reopened.events if "id" in e]
    assert len(ids) == 2 and len(set(ids)) == 2 and min(ids) > cursor, got
    assert ids == sorted(ids)
    reopened.close()

    assert all(e["data"].get("kind") != "handoff" for e in other.events)
    other.close()


@pytest.mark.slow
def test_a_session_ended_elsewhere_ends_the_stream_within_seconds(
    app, app_factory, centre, servers
):
    server = servers(app_factory(LIVE_SESSION_CHECK_SECONDS=1))
    browser = server.session_for(centre["support"])
    stream = Stream(browser, server.url)
    time.sleep(0.2)
    # Another tab of the same browser signs out.
    db.session.commit()
    html = browser.get(server.url + "/").text
    assert "ログアウト" in html
    browser.post(server.url + "/logout", allow_redirects=False)
    started = time.monotonic()
    stream.wait_for(lambda e: e.get("event") == "ended", timeout=6)
    assert time.monotonic() - started < 4
    stream.close()


@pytest.mark.slow
def test_a_logout_tells_the_open_pages_at_once_not_at_the_next_round(
    app, app_factory, centre, servers
):
    """A logout publishes `session.ended` (to no page): the watcher checks its streams' sessions
    at once, so the page knows long before the next round (here a minute away)."""
    server = servers(app_factory(LIVE_SESSION_CHECK_SECONDS=60))
    browser = server.session_for(centre["support"])
    stream = Stream(browser, server.url)
    stream.wait_for(lambda e: e.get("event") == "hello")
    time.sleep(0.3)  # the watcher's first round (at its start) is behind us
    db.session.commit()
    browser.get(server.url + "/")
    browser.post(server.url + "/logout", allow_redirects=False)
    started = time.monotonic()
    stream.wait_for(lambda e: e.get("event") == "ended", timeout=5)
    assert time.monotonic() - started < 2
    assert not any(e.get("data", {}).get("kind") == "session.ended" for e in stream.events)
    stream.close()


def test_a_signed_out_page_learns_it_ended_and_gets_nothing(app, centre):
    hand_over(centre)
    anonymous = app.test_client()
    assert poll(app, anonymous) == {"ended": True, "events": [], "cursor": None}
    response = call(app, anonymous, "GET", "/live/stream?after=0")
    assert response.mimetype == "text/event-stream"
    body = response.get_data(as_text=True)
    assert "event: ended" in body and "handoff" not in body


def test_a_person_who_must_first_enrol_gets_nothing(app, centre):
    """Where two-factor sign-in is required, a password alone opens no live feed (the request
    gate that keeps such a person on the enrolment page does not guard this public endpoint)."""
    override(app, TOTP_REQUIRED="all")
    client = sign_in(app, centre["consultant"])
    hand_over(centre)
    assert poll(app, client) == {"ended": True, "events": [], "cursor": None}
    body = call(app, client, "GET", "/live/stream?after=0").get_data(as_text=True)
    assert "event: ended" in body and "handoff" not in body
    # The same session, once two-factor is no longer asked of everyone, receives the desk's.
    override(app, TOTP_REQUIRED="privileged")
    assert "handoff" in kinds(poll(app, client))


def test_help_alerts_reach_responders_and_the_one_who_asked_only(app, centre, make_staff):
    from consult.services import safety

    colleague = make_staff("consultant")
    clients = {role: sign_in(app, centre[role]) for role in ("consultant", "support", "supervisor")}
    clients["colleague"] = sign_in(app, colleague)
    clients["officer"] = sign_in(app, centre["officer"])
    start = {name: poll(app, client)["cursor"] for name, client in clients.items()}
    alert = safety.raise_alert(
        Actor(centre["consultant"]), place=next(iter(safety.PLACES)), ticket=centre["ticket"]
    )
    db.session.commit()
    safety.respond(Actor(centre["support"]), alert.id, "coming")
    db.session.commit()

    def alerts(name):
        data = poll(app, clients[name], start[name])
        return [e["payload"]["action"] for e in data["events"] if e["kind"] == "alert"]

    assert alerts("support") == ["raised", "coming"]
    assert alerts("supervisor") == ["raised", "coming"]
    assert alerts("consultant") == ["raised", "coming"]  # who asked hears who is coming
    assert alerts("colleague") == []  # another consultant's alert is not theirs
    assert alerts("officer") == []


def test_an_open_ticket_page_refreshed_live_is_audited_once_per_ten_minutes(app, centre):
    """The ticket page refreshes its header and timeline from /tickets/<number>/live on each
    event: what it shows is up to date, and the audit log gets one view per person and ticket
    in ten minutes, not one per event."""
    from consult.models import AuditEvent

    ticket = centre["ticket"]
    number = ticket.number
    consultant = sign_in(app, centre["consultant"])
    colleague = centre["supervisor"]

    def views() -> list[AuditEvent]:
        db.session.expire_all()
        return list(
            db.session.scalars(
                sa.select(AuditEvent).where(
                    AuditEvent.staff_id == centre["consultant"].id,
                    AuditEvent.action == "view",
                    AuditEvent.object_type == "ticket",
                    AuditEvent.object_id == number,
                )
            )
        )

    assert call(app, consultant, "GET", f"/tickets/{number}").status_code == 200
    assert len(views()) == 1  # the page itself
    for n in range(5):  # five events, five refreshes
        tickets.add_note(Actor(colleague), ticket, f"折り返し確認メモ{n}")
        tickets.change_status(
            Actor(colleague), ticket, Status.AWAITING_REPLY if n % 2 == 0 else Status.IN_PROGRESS
        )
        db.session.commit()
        response = call(app, consultant, "GET", f"/tickets/{number}/live")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        data = response.get_json()
        assert f"折り返し確認メモ{n}" in data["timeline"]  # what arrived is shown
        label = "回答待ち" if n % 2 == 0 else "対応中"
        assert label in data["head"]
    assert len(views()) == 1  # and no audit row per event

    # Someone who never opened the page gets a row at the first refresh; ten minutes on, the
    # page still open, another one.
    other = sign_in(app, centre["supervisor"])
    assert call(app, other, "GET", f"/tickets/{number}/live").status_code == 200
    assert call(app, other, "GET", f"/tickets/{number}/live").status_code == 200
    rows = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.staff_id == colleague.id,
            AuditEvent.action == "view",
            AuditEvent.object_id == number,
        )
    ).all()
    assert [(r.action, r.detail) for r in rows] == [("view", "自動更新")]
    later = utcnow() + timedelta(minutes=11)
    assert tickets.record_live_view(Actor(centre["consultant"]), ticket, now=later) is True
    db.session.commit()
    assert len(views()) == 2

    # An officer may not read a ticket's fragment (the desk's), as for the page.
    officer = sign_in(app, centre["officer"])
    assert call(app, officer, "GET", f"/tickets/{number}/live").status_code == 403


def test_the_sessions_of_all_streams_are_checked_in_one_query(app, centre):
    """One query per round for every stream of the process, whatever their number; a stream
    learns that its own session ended, not another's."""
    import hashlib

    tokens = {}
    for role in ("officer", "consultant", "support"):
        client = sign_in(app, centre[role])
        with client.session_transaction() as flask_session:
            token = flask_session["_user_id"]
        tokens[role] = hashlib.sha256(token.encode("ascii")).hexdigest()
    hub = live.Hub(db.engine)
    rule = live.SessionRule(timedelta(minutes=30), timedelta(hours=10))
    for token_hash in tokens.values():
        hub.register(token_hash, rule)
        hub.register(token_hash, rule)  # two pages of one session
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    hub.check_sessions()
    assert len([s for s in statements if "staff_session" in s]) == 1
    assert not any(hub.session_ended(h) for h in tokens.values())

    session = db.session.scalar(
        sa.select(StaffSession).where(StaffSession.token_hash == tokens["support"])
    )
    session.ended_at = utcnow()
    db.session.commit()
    generation = hub.generation
    hub.check_sessions()
    assert hub.generation > generation  # the streams were woken to say so
    assert hub.session_ended(tokens["support"])
    assert not hub.session_ended(tokens["officer"]) and not hub.session_ended(tokens["consultant"])
    hub.unregister(tokens["support"])
    assert hub.session_ended(tokens["support"])  # its other page still holds it
    hub.unregister(tokens["support"])
    assert not hub.session_ended(tokens["support"])  # forgotten with its last stream
