"""The live channel over Redis: two real app servers (gunicorn, gthread) over one database, with
MADOGUCHI_REDIS_URL set. An event published through one server reaches a stream held by the
other at once; with Redis gone, the table watcher still carries events, and the log says so.

Each test runs its own throwaway redis-server (one is stopped on purpose)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import redis
import requests

from consult.extensions import db
from consult.live import services as live
from consult.models import Channel
from consult.services import safety, tickets
from consult.services.actor import Actor
from tests.gunicorn import csrf_token, gunicorn_server
from tests.helpers import PASSWORD
from tests.live.test_live import Stream
from tests.redis_server import throwaway_redis

pytestmark = pytest.mark.slow

FAST = 2.0  # seconds: an event from one server to a stream on the other


@contextmanager
def two_servers(database_url, tmp_path, settings):
    """Two app servers over one database (one gthread worker each): (acting, watching)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with (
        gunicorn_server(database_url, tmp_path / "a", settings, workers=1) as acting,
        gunicorn_server(database_url, tmp_path / "b", settings, workers=1) as watching,
    ):
        yield acting, watching


def log_in(url: str, login: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(url + "/login", timeout=60)
    answer = browser.post(
        url + "/login",
        data={"login": login, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
        headers={"Connection": "close"},
        allow_redirects=False,
        timeout=60,
    )
    assert answer.status_code == 302, answer.text[:500]
    return browser


def answer_alert(url: str, browser: requests.Session, alert_id: int, kind: str) -> None:
    token = csrf_token(browser.get(url + "/", timeout=60).text)
    answer = browser.post(
        f"{url}/alerts/{alert_id}/{kind}",
        data={"csrf_token": token},
        headers={"Connection": "close", "Accept": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text[:500]


def alert_events(stream: Stream, action: str):
    return stream.wait_for(
        lambda e: e["data"].get("kind") == "alert" and e["data"]["payload"]["action"] == action,
        timeout=FAST,
    )


@pytest.fixture
def alert(app, make_staff):
    consultant = Actor(make_staff("consultant"), "127.0.0.1")
    ticket = tickets.create_ticket(consultant, channel=Channel.COUNTER, subject="窓口での相談")
    raised = safety.raise_alert(consultant, place=next(iter(safety.PLACES)), ticket=ticket)
    people = {"support": make_staff("support").login, "supervisor": make_staff("supervisor").login}
    db.session.flush()
    alert_id = raised.id
    # SQLite: no transaction (write lock) of ours while the servers work, and nothing read
    # after the commit (that would begin another).
    db.session.commit()
    return alert_id, people


def test_an_event_through_one_server_reaches_a_stream_on_the_other_by_redis(
    database_url, tmp_path, alert
):
    alert_id, people = alert
    with throwaway_redis() as redis_url:
        settings = {"REDIS_URL": redis_url, "PASSWORD_HASH_COST": "fast"}
        spy = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        spy.subscribe(live.REDIS_CHANNEL)
        with two_servers(database_url, tmp_path, settings) as (acting, watching):
            stream = Stream(log_in(watching.url, people["support"]), watching.url)
            stream.wait_for(lambda e: e.get("event") == "hello", timeout=30)
            # The watching server's one watcher subscribes (one per process, not per stream).
            deadline = time.monotonic() + 10
            while redis.Redis.from_url(redis_url).pubsub_numsub(live.REDIS_CHANNEL)[0][1] < 1:
                assert time.monotonic() < deadline, "the watching server never subscribed"
                time.sleep(0.05)

            supervisor = log_in(acting.url, people["supervisor"])
            answer_alert(acting.url, supervisor, alert_id, "coming")
            answered = time.monotonic()
            [event] = alert_events(stream, "coming")
            assert time.monotonic() - answered < FAST
            assert event["data"]["payload"]["alert_id"] == alert_id
            # It went through Redis: the acting server published the top id after its commit.
            deadline = time.monotonic() + 5
            message = None
            while message is None and time.monotonic() < deadline:
                message = spy.get_message(timeout=0.5)  # None for the subscription's own
            assert message is not None and int(message["data"]) >= int(event["id"])
            stream.close()
        spy.close()


def test_with_redis_gone_the_table_watcher_carries_events_and_the_log_says_so(
    database_url, tmp_path, alert
):
    alert_id, people = alert
    with throwaway_redis() as redis_url:
        settings = {"REDIS_URL": redis_url, "PASSWORD_HASH_COST": "fast"}
        with two_servers(database_url, tmp_path, settings) as (acting, watching):
            stream = Stream(log_in(watching.url, people["support"]), watching.url)
            stream.wait_for(lambda e: e.get("event") == "hello", timeout=30)
            supervisor = log_in(acting.url, people["supervisor"])
            answer_alert(acting.url, supervisor, alert_id, "coming")
            alert_events(stream, "coming")

            redis.Redis.from_url(redis_url).shutdown(nosave=True)
            answer_alert(acting.url, supervisor, alert_id, "arrived")
            answered = time.monotonic()
            alert_events(stream, "arrived")
            assert time.monotonic() - answered < FAST
            ids = [e["id"] for e in stream.events if "id" in e]
            assert len(ids) == len(set(ids)) == 2  # once each
            stream.close()
            for server, said in (
                (watching, "live: redis connection lost (ConnectionError)"),
                (acting, "live: publishing to Redis failed (ConnectionError)"),
            ):
                lines = [line for line in server.log().splitlines() if "live:" in line]
                assert any(said in line for line in lines), server.log()
                # No personal data or address in them: fixed words and the error's class only.
                assert not any("@" in line or "redis://" in line for line in lines), lines
