"""The two zones: from LINE's webhook at the relay to the ticket on the core, and throughput.

A relay (MADOGUCHI_ROLE=relay, gunicorn -w 2, its own SQLite file) and a core
(MADOGUCHI_ROLE=core, `madoguchi worker` with its default lanes: the transfer pulls every
MADOGUCHI_RELAY_INTERVAL_SECONDS, 1 s by default) run on 127.0.0.1, signed HMAC requests
between them as in production; LINE's API is 127.0.0.1:9 where nothing listens.

1. Latency: `--messages` webhooks (one text event each, a new LINE user each), one every
   0.3-0.7 s; for each, the time from the webhook's answer to the message's timeline entry on
   the core (its created_at, written by the core's worker). p50/p95/max. Target: p95 < 3 s.
2. Throughput: with the core's worker stopped, `--burst` events (10 per webhook) wait on the
   relay; then one `transfer pull` round is timed in this process: events per second taken from
   the relay and stored on the core (then acknowledged and deleted on the relay). Target: 100/s.

    .venv/bin/python bench/zones.py --db both [--messages 60 --burst 2000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import SECRET, free_port, kinds, log, scratch, start_gunicorn, stop  # noqa: E402
from bench.line import LINE_SECRET, WEBHOOK, migrate  # noqa: E402

KEY = "bench-relay-key-0123456789abcdef-0123456789"


def line_env() -> dict:
    return {
        "MADOGUCHI_LINE_CHANNEL_SECRET": LINE_SECRET,
        "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN": "bench-token",
        "MADOGUCHI_LINE_API_HOST": "http://127.0.0.1:9",
        "MADOGUCHI_RELAY_KEY": KEY,
        "MADOGUCHI_TOTP_REQUIRED": "none",
    }


def core_env(url: str, tmp: Path, relay_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "MADOGUCHI_DATABASE_URL": url,
            "MADOGUCHI_SECRET_KEY": SECRET,
            "MADOGUCHI_DATA_DIR": str(tmp / "data"),
            "MADOGUCHI_ROLE": "core",
            "MADOGUCHI_RELAY_URL": relay_url,
            "PYTHONPATH": str(ROOT),
            **line_env(),
        }
    )
    return env


def start_core_worker(env: dict, tmp: Path) -> subprocess.Popen:
    madoguchi = Path(sys.executable).parent / "madoguchi"
    return subprocess.Popen(
        [str(madoguchi), "worker"],  # the default interval, as production runs it
        cwd=str(tmp),
        env=env,
        stdout=open(tmp / "core-worker.log", "wb"),
        stderr=subprocess.STDOUT,
    )


def webhook(user: int, texts: list[str]) -> tuple[bytes, str]:
    now = int(time.time() * 1000)
    events = [
        {
            "type": "message", "mode": "active", "timestamp": now + n,
            "source": {"type": "user", "userId": f"U{user:032x}"},
            "webhookEventId": f"zones{user:08d}{n:03d}",
            "deliveryContext": {"isRedelivery": False},
            "message": {"type": "text", "id": f"{user}{n}", "quoteToken": "q", "text": text},
        }
        for n, text in enumerate(texts)
    ]  # fmt: skip
    body = json.dumps({"destination": "U" + "0" * 32, "events": events}, ensure_ascii=False)
    digest = hmac.new(LINE_SECRET.encode(), body.encode(), hashlib.sha256).digest()
    return body.encode(), base64.b64encode(digest).decode()


def post(session: requests.Session, relay: str, user: int, texts: list[str]) -> None:
    body, signature = webhook(user, texts)
    answer = session.post(
        relay + WEBHOOK,
        data=body,
        headers={"Content-Type": "application/json", "X-Line-Signature": signature},
        timeout=30,
    )
    answer.raise_for_status()


class Watcher(threading.Thread):
    """Polls the core's database every 50 ms: when each awaited message became a timeline
    entry (the entries' own created_at is the time LINE gave the message, not when it came)."""

    def __init__(self, engine):
        super().__init__(daemon=True)
        self.engine = engine
        self.awaited: set[str] = set()
        self.seen: dict[str, float] = {}
        self.pulled: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            waiting = self.awaited - set(self.seen)
            if waiting:
                with self.engine.connect() as conn:
                    rows = (
                        conn.execute(
                            sa.text(
                                "SELECT body FROM timeline_entry WHERE kind = 'message_in'"
                                " AND body LIKE 'ゾーン間の相談%'"
                            )
                        )
                        .scalars()
                        .all()
                    )
                    bodies = (
                        conn.execute(
                            sa.text("SELECT body FROM line_delivery WHERE body LIKE :p"),
                            {"p": "%ゾーン間の相談%"},
                        )
                        .scalars()
                        .all()
                    )
                now = time.time()
                for body in rows:
                    if body in waiting:
                        self.seen[body] = now
                for body in bodies:
                    for text in self.awaited:
                        if text not in self.pulled and text in body:
                            self.pulled[text] = now
            self.stop.wait(0.05)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def run(kind: str, messages: int, burst: int) -> None:
    with (
        scratch("sqlite", "zones-relay") as (rtmp, relay_db),
        scratch(kind, "zones-core") as (
            ctmp,
            core_db,
        ),
    ):
        migrate(relay_db, rtmp)
        migrate(core_db, ctmp)
        port = free_port()
        relay_url = f"http://127.0.0.1:{port}"
        relay = start_gunicorn(relay_db, rtmp, port, env={"MADOGUCHI_ROLE": "relay", **line_env()})
        env = core_env(core_db, ctmp, relay_url)
        worker = start_core_worker(env, ctmp)
        engine = sa.create_engine(core_db.replace("postgresql://", "postgresql+psycopg://"))
        session = requests.Session()
        try:
            watcher = Watcher(engine)
            watcher.start()
            # Untimed: until the worker has started and taken a first message.
            warm = f"ゾーン間の相談 {kind} warm-up"
            watcher.awaited.add(warm)
            post(session, relay_url, 99_999, [warm])
            deadline = time.time() + 180
            while warm not in watcher.seen and time.time() < deadline:
                time.sleep(0.2)
            assert warm in watcher.seen, (ctmp / "core-worker.log").read_text()[-3000:]
            del watcher.seen[warm]
            watcher.awaited.discard(warm)
            sent: dict[str, float] = {}
            for n in range(messages):
                text = f"ゾーン間の相談 {kind} {n}"
                watcher.awaited.add(text)
                post(session, relay_url, n, [text])
                sent[text] = time.time()
                time.sleep(random.uniform(0.3, 0.7))
            deadline = time.time() + 60
            while time.time() < deadline and len(watcher.seen) < len(sent):
                time.sleep(0.2)
            watcher.stop.set()
            delays = [watcher.seen[t] - sent[t] for t in watcher.seen]
            log(
                f"{kind}: webhook at the relay → ticket on the core, {len(delays)}/{len(sent)}"
                f" messages: p50 {statistics.median(delays):.2f} s, p95 {pct(delays, 95):.2f} s,"
                f" max {max(delays):.2f} s (target p95 < 3 s)"
            )
            taken = [watcher.pulled[t] - sent[t] for t in watcher.pulled if t in sent]
            if taken:
                log(
                    f"{kind}: of which the transfer (webhook → stored on the core): p50"
                    f" {statistics.median(taken):.2f} s, p95 {pct(taken, 95):.2f} s"
                )

            stop(worker)
            os.environ.update({k: v for k, v in env.items() if k.startswith("MADOGUCHI_")})
            # Stored only; processing them into tickets is the worker's (bench/line.py).
            os.environ["MADOGUCHI_LINE_PROCESS_AFTER_RESPONSE"] = "false"
            from consult import create_app
            from consult.transfer import client

            app = create_app(instance_path=str(ctmp / "instance"))
            with app.app_context():
                client.run_round(max_batches=1, do_push=False)  # warm: the mappers, the pool
            users = burst // 10
            start = time.monotonic()
            for u in range(users):
                post(session, relay_url, 100_000 + u, [f"まとめて {u}-{e}" for e in range(10)])
            log(
                f"{kind}: {users * 10} events stored on the relay"
                f" in {time.monotonic() - start:.1f} s"
            )
            with app.app_context():
                start = time.monotonic()
                report = client.run_round(max_batches=10_000, do_push=False)
                took = time.monotonic() - start
            assert report.link_down is None, report.link_down
            log(
                f"{kind}: transfer pulled {report.pulled} webhook bodies ({users * 10} events)"
                f" in {took:.2f} s: {users * 10 / took:.0f} events/s,"
                f" {report.pulled / took:.0f} bodies/s (target 100 events/s)"
            )
            left = requests.post(relay_url + "/relay/v1/pull", json={}, timeout=10).status_code
            log(f"{kind}: an unsigned pull at the relay answers {left}")
        finally:
            # The pull kicks the processing of what it stored in this process ("line-kick"):
            # let it finish before the scratch database goes, or it fails against a dropped one.
            for thread in threading.enumerate():
                if thread.name == "line-kick":
                    thread.join(timeout=300)
            stop(worker)
            stop(relay)
            if os.environ.get("ZONES_SHOW_LOG"):
                print((ctmp / "core-worker.log").read_text()[-6000:])
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--burst", type=int, default=2000)
    args = parser.parse_args()
    for kind in kinds(args.db):
        run(kind, args.messages, args.burst)


if __name__ == "__main__":
    main()
