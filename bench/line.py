"""LINE webhook benchmark: signed deliveries under gunicorn, response times and processing time.

1,000 signed webhook deliveries with 5 text events each (one LINE user per delivery) are sent
50 at a time to the app under gunicorn on 127.0.0.1, after 200 untimed warm-up deliveries (a
running server has its connections open). It prints p50/p95/max of the webhook's response time
(target: p95 under 50 ms) and the time from the first timed request until every event is a
timeline entry. As in production, a `madoguchi worker` process runs beside gunicorn (niced) and
does the processing; its outbox sends the automatic answers to 127.0.0.1:9, where nothing
listens, so they wait for their retry.

    .venv/bin/python bench/line.py --db both [--deliveries 1000 --events 5 --concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import SECRET, free_port, log, scratch, start_gunicorn, stop  # noqa: E402

LINE_SECRET = "bench-channel-secret"
WEBHOOK = "/channels/line/webhook"


def migrate(url: str, tmp: Path) -> None:
    from flask_migrate import upgrade

    from consult import create_app
    from consult.extensions import db

    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": SECRET, "DATA_DIR": str(tmp / "data")},
        instance_path=str(tmp / "instance"),
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()


def line_env(kick: bool) -> dict:
    return {
        "MADOGUCHI_LINE_PROCESS_AFTER_RESPONSE": "true" if kick else "false",
        "MADOGUCHI_LINE_CHANNEL_SECRET": LINE_SECRET,
        "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN": "bench-token",
        "MADOGUCHI_LINE_API_HOST": "http://127.0.0.1:9",  # nothing listens: answers wait
    }


def start_worker(url: str, tmp: Path, kick: bool) -> subprocess.Popen:
    """`madoguchi worker`, as production runs it beside gunicorn, at a lower CPU priority: on
    two CPUs, the webhook's answers come before the processing of what it stored."""
    madoguchi = Path(sys.executable).parent / "madoguchi"
    env = dict(os.environ)
    env.update(
        {
            "MADOGUCHI_DATABASE_URL": url,
            "MADOGUCHI_SECRET_KEY": SECRET,
            "MADOGUCHI_DATA_DIR": str(tmp / "data"),
            "PYTHONPATH": str(ROOT),
            **line_env(kick),
        }
    )
    return subprocess.Popen(
        ["nice", "-n", "10", str(madoguchi), "worker", "--interval", "0.5"],
        cwd=str(tmp),
        env=env,
        stdout=open(tmp / "worker.log", "wb"),
        stderr=subprocess.STDOUT,
    )


def bodies(deliveries: int, events: int) -> list[tuple[bytes, str]]:
    now = int(time.time() * 1000)
    out = []
    for d in range(deliveries):
        user = f"U{d:032x}"
        items = [
            {
                "type": "message",
                "mode": "active",
                "timestamp": now + e,
                "source": {"type": "user", "userId": user},
                "webhookEventId": f"bench{d:06d}{e:02d}",
                "deliveryContext": {"isRedelivery": False},
                "replyToken": f"rt{d}{e}",
                "message": {"type": "text", "id": f"{d}{e}", "quoteToken": "q",
                            "text": f"ベンチマークの相談 {d}-{e}"},
            }
            for e in range(events)
        ]  # fmt: skip
        body = json.dumps({"destination": "U" + "0" * 32, "events": items}, ensure_ascii=False)
        digest = hmac.new(LINE_SECRET.encode(), body.encode(), hashlib.sha256).digest()
        out.append((body.encode(), base64.b64encode(digest).decode()))
    return out


async def _post(reader, writer, port: int, body: bytes, signature: str) -> int:
    head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Line-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed by the server")
    length, closing = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            closing = True
    await reader.readexactly(length)
    return int(status_line.split()[1]) * (-1 if closing else 1)


async def send_all(port: int, payloads, concurrency: int) -> list[tuple[int, float]]:
    """LINE's side: `concurrency` connections, each posting its next delivery when answered.

    A bare asyncio HTTP/1.1 client (keep-alive, reconnecting when the server closes): the
    benchmark shares two CPUs with the server, so the client must cost far less than it does.
    """
    queue = list(reversed(payloads))
    results: list[tuple[int, float]] = []

    async def connection() -> None:
        reader = writer = None
        while queue:
            body, signature = queue.pop()
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter()
            try:
                status = await _post(reader, writer, port, body, signature)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                started = time.perf_counter()
                status = await _post(reader, writer, port, body, signature)
            results.append((abs(status), (time.perf_counter() - started) * 1000))
            if status < 0:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return results


def bench_one(kind: str, args) -> dict:
    with scratch(kind, "line") as (tmp, url):
        migrate(url, tmp)
        port = free_port()
        options = ["-w", str(args.workers), "--threads", str(args.threads), "-k", args.worker_class]
        server = start_gunicorn(url, tmp, port, options, line_env(args.kick))
        worker = start_worker(url, tmp, args.kick)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            payloads = bodies(args.warmup + args.deliveries, args.events)

            def entries() -> int:
                with engine.connect() as conn:
                    return conn.execute(
                        sa.text("SELECT count(*) FROM timeline_entry WHERE kind = 'message_in'")
                    ).scalar()

            def wait_for(wanted: int) -> int:
                count = 0
                deadline = time.monotonic() + args.wait
                while time.monotonic() < deadline:
                    count = entries()
                    if count >= wanted:
                        break
                    time.sleep(0.2)
                return count

            if args.warmup:
                # A running server has its connections open and its statements prepared.
                log(f"{kind}: warming up with {args.warmup} deliveries (not timed)")
                asyncio.run(send_all(port, payloads[: args.warmup], args.concurrency))
                wait_for(args.warmup * args.events)
            log(f"{kind}: {args.deliveries} deliveries × {args.events} events, "
                f"{args.concurrency} at a time")  # fmt: skip
            started = time.perf_counter()
            results = asyncio.run(send_all(port, payloads[args.warmup :], args.concurrency))
            sent = time.perf_counter() - started
            statuses = {code for code, _ in results}
            wanted = (args.warmup + args.deliveries) * args.events
            count = wait_for(wanted)
            processed = time.perf_counter() - started
            times = sorted(ms for _, ms in results)
            return {
                "statuses": statuses,
                "p50": statistics.median(times),
                "p95": times[int(len(times) * 0.95) - 1],
                "max": times[-1],
                "sent_s": sent,
                "entries": count - args.warmup * args.events,
                "wanted": wanted - args.warmup * args.events,
                "all_s": processed if count >= wanted else None,
            }
        finally:
            stop(server)
            stop(worker)
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--warmup", type=int, default=200, help="deliveries sent (and processed) before timing"
    )
    # Processes, not threads: on two CPUs, threads of one process queue for the GIL behind each
    # other's HTTP parsing; measured, sync workers roughly halved the webhook's median here.
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--workers", type=int, default=6, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument(
        "--kick",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also process in the gunicorn processes right after each response",
    )
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for processing")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = {kind: bench_one(kind, args) for kind in kinds}
    print()
    print(f"{args.deliveries:,} deliveries × {args.events} events, {args.concurrency} concurrent")
    print(f"{'database':<11} {'status':<8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
          f"{'sent s':>8} {'all entries s':>14}")  # fmt: skip
    for kind, r in results.items():
        done = f"{r['all_s']:.1f}" if r["all_s"] else f"{r['entries']}/{r['wanted']} (timeout)"
        print(
            f"{kind:<11} {','.join(map(str, sorted(r['statuses']))):<8} {r['p50']:>8.1f} "
            f"{r['p95']:>8.1f} {r['max']:>8.1f} {r['sent_s']:>8.1f} {done:>14}"
        )


if __name__ == "__main__":
    main()
