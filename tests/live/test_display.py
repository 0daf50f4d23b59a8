"""The lobby display's public stream (/display/live): calls only, with the reception number and
the room, for a screen with no session. Read raw (JSON of ?poll=1 and the SSE text from a real
server), so no other kind of event can hide behind the page."""

from __future__ import annotations

import json
import threading
import time

import requests
import sqlalchemy as sa

from channels.counter import services as counter
from channels.counter import views as counter_views
from consult.extensions import db
from consult.live import services as live
from consult.live.models import LiveEvent
from consult.services.actor import Actor
from tests.live.test_live import SUMMARY, Server, centre, hand_over, servers  # noqa: F401

CITIZEN = "高松 花子"


def walk_in_and_call(people, room=2):
    actor = Actor(people["consultant"], "127.0.0.1")
    visit = counter.receive(
        actor,
        counter.WalkIn(category_id=None, room=1, first_note="転入届について", name=CITIZEN),
    )
    db.session.commit()
    counter.move(actor, visit.ticket, "call", room)
    db.session.commit()
    return visit


def everything_else(people):
    """One event of every other kind, public-looking audiences included."""
    hand_over(people)  # handoff, ticket.status, ticket.timeline
    live.publish("alert", ["role:support"], {"alert_id": 1, "place": "相談室1"})
    live.publish("ticket.created", ["desk"], {"ticket_id": 1, "number": "2026-000001"})
    # Even a call-like kind to the display's audience is not a call.
    live.publish("display.other", ["display"], {"number": 99})
    db.session.commit()


def test_the_display_stream_carries_calls_only_and_needs_no_session(app, centre):  # noqa: F811
    everything_else(centre)
    visit = walk_in_and_call(centre)
    kinds = set(db.session.scalars(sa.select(LiveEvent.kind)))
    assert {"handoff", "alert", "ticket.created", "ticket.timeline", "display.call"} <= kinds

    anonymous = app.test_client()  # a public screen: no session, no cookie
    response = anonymous.get("/display/live?poll=1&after=0")
    assert response.status_code == 200
    data = response.get_json()
    assert [e["kind"] for e in data["events"]] == ["display.call"]
    assert data["events"][0]["payload"] == {"number": visit.reception_number, "room": 2}
    assert data["cursor"] == db.session.scalar(sa.select(sa.func.max(LiveEvent.id)))
    raw = response.get_data(as_text=True)
    for secret in (CITIZEN, SUMMARY, visit.ticket.number):
        assert secret not in raw
    assert "Set-Cookie" not in response.headers  # the stream starts no session

    # A later cursor: nothing again, and seating or finishing the visit is not a call.
    actor = Actor(centre["consultant"])
    counter.move(actor, visit.ticket, "serve")
    counter.move(actor, visit.ticket, "finish")
    db.session.commit()
    later = anonymous.get(f"/display/live?poll=1&after={data['cursor']}").get_json()
    assert later["events"] == []


class DisplayStream:
    """A held SSE connection to /display/live, read in a thread."""

    def __init__(self, url, last_event_id=None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(
            url + "/display/live", headers=headers, stream=True, timeout=30
        )
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.blocks: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        block: dict = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if block:
                        self.blocks.append(block)
                    block = {}
                elif line.startswith(("id: ", "data: ")):
                    key, _, value = line.partition(": ")
                    block[key] = json.loads(value) if key == "data" else value
        except Exception as error:  # closed under us: the test reads what came
            self.closed_by = error

    @property
    def events(self):
        return [b["data"] for b in self.blocks if "data" in b]

    def wait_for(self, test, timeout=8.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(test(b) for b in self.blocks):
                return
            time.sleep(0.05)
        raise AssertionError(f"not received: {self.blocks}")

    def close(self):
        self.response.close()


def test_a_held_display_stream_gets_a_call_at_once_and_resumes_past_other_events(
    app,
    centre,  # noqa: F811
    servers,  # noqa: F811
    monkeypatch,
):
    # A closed connection is noticed at the next write: keep the test's streams short-lived.
    monkeypatch.setattr(counter_views, "DISPLAY_HEARTBEAT_SECONDS", 0.5)
    server = servers(app)
    db.session.commit()
    stream = DisplayStream(server.url)  # no session at all
    try:
        everything_else(centre)
        visit = walk_in_and_call(centre, room=3)
        stream.wait_for(lambda b: "data" in b)
        assert [e["kind"] for e in stream.events] == ["display.call"]
        assert stream.events[0]["payload"] == {"number": visit.reception_number, "room": 3}
        # The cursor passes the other kinds too (an id with no data): a reconnect with
        # Last-Event-ID starts after them, and after the call, so nothing is shown twice.
        top = db.session.scalar(sa.select(sa.func.max(LiveEvent.id)))
        live.publish("alert", ["role:support"], {"alert_id": 2})
        db.session.commit()
        stream.wait_for(lambda b: b.get("id") == str(top + 1) and "data" not in b)
    finally:
        stream.close()

    again = DisplayStream(server.url, last_event_id=top + 1)
    try:
        second = walk_in_and_call(centre, room=1)
        again.wait_for(lambda b: "data" in b)
        assert [e["payload"] for e in again.events] == [
            {"number": second.reception_number, "room": 1}
        ]
    finally:
        again.close()
