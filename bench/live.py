"""The live channel under load: held SSE connections, events a second, latency and idle cost.

    MADOGUCHI_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
      .venv/bin/python bench/live.py --db both --connections 300 --rate 5 --seconds 20

Serves the app with gunicorn's gthread worker (as the README advises for /live/), signs in
`--connections` sessions and holds one stream each from a single client thread (raw sockets, not
browsers), then publishes `--rate` events a second from another process's point of view (this
script, its own engine) and measures, per delivered event, the time from the commit to the line
arriving at the client. Then it leaves the pages idle and reports the server's CPU and memory
and the requests a second they cost, against what today's polls would cost the same pages.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    build_app,
    free_port,
    kinds,
    log,
    percentiles,
    scratch,
    sign_in,
    start_gunicorn,
    stop,
)

PASSWORD = "bench-password-2026"
# Today's polls per open page (before the live channel): alerts.js every second on every desk
# page; handoff.js twice a second on the queue (badges) and on a ticket page (panel).
POLLS_PER_PAGE = {"alerts (1/s)": 1.0, "queue or ticket panel (2/s)": 2.0}


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _family(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(c) for c in children)]


def _rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Holder:
    """Holds many SSE connections in one thread; notes when each `bench` event arrives."""

    def __init__(self, port: int, cookies: list[str]):
        self.selector = selectors.DefaultSelector()
        self.arrivals: list[tuple[int, float]] = []
        self.seqs: dict[socket.socket, list[int]] = {}
        self.ready: set[socket.socket] = set()
        self.buffers: dict[socket.socket, bytes] = {}
        self.closed = 0
        for cookie in cookies:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                (
                    "GET /live/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
                ).encode()
            )
            sock.setblocking(False)
            self.buffers[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                now = time.time()
                if not data:
                    self.selector.unregister(sock)
                    self.closed += 1
                    continue
                buffer = self.buffers[sock] + data
                *lines, rest = buffer.split(b"\n")
                self.buffers[sock] = rest
                for line in lines:
                    if line.startswith(b"retry:"):
                        self.ready.add(sock)
                    if line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        if event.get("kind") == "bench":
                            self.arrivals.append((event["payload"]["seq"], now))
                            self.seqs.setdefault(sock, []).append(event["payload"]["seq"])

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        for sock in self.buffers:
            sock.close()


def run(kind: str, connections: int, rate: float, seconds: float, idle: float) -> dict:
    with scratch(kind, "live") as (tmp, url):
        app = build_app(url, tmp)
        from flask_migrate import upgrade

        from consult.extensions import db
        from consult.live import services as live
        from consult.services import staff as staff_service

        with app.app_context():
            upgrade()
            staff_service.create_staff(
                None,
                login="bench",
                full_name="ベンチ 太郎",
                display_name="べんち / Bench",
                role="consultant",
                password=PASSWORD,
            )
            db.session.commit()
        port = free_port()
        threads = connections // 2 + 20
        server = start_gunicorn(
            url,
            tmp,
            port,
            ["-k", "gthread", "-w", "2", "--threads", str(threads)],
            env={"MADOGUCHI_PASSWORD_HASH_COST": "fast"},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            log(f"{kind}: signing in {connections} sessions")
            cookies = []
            for _ in range(connections):
                session, _token = sign_in(base, "bench", PASSWORD, "/")
                cookies.append("; ".join(f"{k}={v}" for k, v in session.cookies.items()))
            holder = Holder(port, cookies)
            waited = time.monotonic() + 60
            while len(holder.ready) < connections and time.monotonic() < waited:
                time.sleep(0.1)
            time.sleep(1)  # every stream has taken its cursor
            family = _family(server.pid)
            sent: dict[int, float] = {}
            log(f"{kind}: {rate} events/s for {seconds} s to {connections} streams")
            with app.app_context():
                seq = 0
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    live.publish("bench", ["desk"], {"seq": seq})
                    db.session.commit()
                    sent[seq] = time.time()
                    seq += 1
                    time.sleep(1 / rate)
            time.sleep(2)
            latencies = [(at - sent[s]) * 1000 for s, at in holder.arrivals if s in sent]
            expected = len(sent) * connections
            # Lost: a stream that skipped a number, or shows one twice.
            broken = sum(
                1 for got in holder.seqs.values() if got != list(range(got[0], got[0] + len(got)))
            )
            before, rss_before = sum(_ticks(p) for p in family), _rss_kb(family)
            log(f"{kind}: idle for {idle} s")
            time.sleep(idle)
            cpu = (sum(_ticks(p) for p in family) - before) / os.sysconf("SC_CLK_TCK")
            rss = _rss_kb(family)
            holder.close()
            return {
                "db": kind,
                "delivered": f"{len(latencies)}/{expected}",
                "streams_ready": len(holder.ready),
                "streams_with_gap_or_repeat": broken,
                **{k: round(v, 1) for k, v in percentiles(latencies).items()},
                "idle_cpu_pct": round(100 * cpu / idle, 2),
                "rss_mb": round(rss / 1024, 1),
                "rss_kb_per_conn": round(max(rss - rss_before, 0) / connections, 1)
                if rss > rss_before
                else round(rss / connections, 1),
                "idle_requests_per_s": round(connections / 300.0, 2),  # one reconnect / 5 min
                "polling_requests_per_s": {
                    name: connections * per for name, per in POLLS_PER_PAGE.items()
                },
            }
        finally:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    for kind in kinds(args.db):
        print(
            json.dumps(run(kind, args.connections, args.rate, args.seconds, args.idle)), flush=True
        )


if __name__ == "__main__":
    main()
