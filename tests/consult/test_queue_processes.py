"""The work queue with real processes (`madoguchi worker`, `madoguchi mail ingest`), on both
databases: one ticket per mail whoever processes it, each message delivered once when a worker
is killed in the middle of sending (the rest resumed within 30 s by another worker), and LINE
kept flowing while the SMTP server hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import has_app_context
from werkzeug.serving import make_server

from channels.email.models import InboundMail, InboundStatus
from channels.line.models import EventStatus, LineContact, LineDelivery, LineEvent
from consult.extensions import db
from consult.models import (
    Channel,
    EntryKind,
    OutboxMessage,
    OutboxStatus,
    Ticket,
    TimelineEntry,
    WorkerHeartbeat,
)
from consult.services import mail, outbox
from tests.channels import dovecot
from tests.channels.line.conftest import body_of, text_event
from tests.channels.line.fake_line import SECRET, TOKEN, start_fake_line
from tests.channels.test_email_channel import citizen_mail
from tests.channels.test_email_imap import _append
from tests.conftest import SmtpSink, _start_smtp
from tests.consult.test_queue import silent_smtp  # noqa: F401 (a fixture)
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.slow
dovecot_server = dovecot.dovecot_server  # the fixture, from its own module

ROOT = Path(__file__).resolve().parents[2]
MADOGUCHI = str(Path(sys.executable).parent / "madoguchi")


@pytest.fixture
def env(database_url, tmp_path):
    values = dict(os.environ)
    values.update(
        {
            "MADOGUCHI_DATABASE_URL": database_url,
            "MADOGUCHI_SECRET_KEY": "queue-test-secret-key-long-enough-1234567890abcdef",
            "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
            "MADOGUCHI_PASSWORD_HASH_COST": "fast",
            "MADOGUCHI_TOTP_REQUIRED": "none",
            "MADOGUCHI_MAIL_AUTO_ACK": "false",
            "MADOGUCHI_LINE_BURST_QUIET_MS": "0",
            "PYTHONPATH": str(ROOT),
        }
    )
    return values


class Processes:
    """The `madoguchi` processes a test started, stopped (killed at the latest) at its end."""

    def __init__(self, env, tmp_path):
        self.env, self.tmp_path, self.running = env, tmp_path, []

    def start(self, *args, **extra_env) -> subprocess.Popen:
        log = open(self.tmp_path / f"proc{len(self.running)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [MADOGUCHI, *args],
            env={**self.env, **extra_env},
            cwd=str(self.tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append((process, log))
        return process

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-3000:] for path in self.tmp_path.glob("proc*.log")
        )

    def stop_all(self) -> None:
        for process, _log in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process, log in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture
def processes(env, tmp_path):
    started = Processes(env, tmp_path)
    yield started
    # The test's own transaction ends first: on SQLite it holds the write lock (BEGIN IMMEDIATE)
    # that a worker's round may be waiting for, and the worker would see the stop only after
    # its busy timeout (30 s): half a minute for nothing at the end of each test.
    if has_app_context():
        db.session.rollback()
    started.stop_all()


def _wait(predicate, timeout: float, what: str, processes: Processes | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        result = predicate()
        db.session.commit()  # no snapshot or SQLite lock held between two looks
        if result:
            return result
        time.sleep(0.2)
    logs = processes.logs() if processes is not None else ""
    rows = db.session.execute(sa.select(OutboxMessage.id, OutboxMessage.status)).all()
    raise AssertionError(f"{what}: not within {timeout} s\n{rows}\n{logs}")


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# --- one ticket per mail -----------------------------------------------------------------------


def test_mail_piped_in_parallel_while_two_workers_run_makes_one_ticket_each(app, env, processes):
    workers = [processes.start("worker", "--lane", "mail-in", "--interval", "0.1") for _ in "ab"]
    # Three pipes of three: before the queue, nearly every piped mail became two tickets.
    mails = [
        citizen_mail(message_id=f"<pipe{n}@docomo.ne.jp>", subject=f"児童手当について{n}")
        for n in range(9)
    ]
    failures = []

    def pipe(batch):
        for raw in batch:
            done = subprocess.run(
                [MADOGUCHI, "mail", "ingest"], input=raw, env=env, capture_output=True, timeout=180
            )
            if done.returncode != 0 or b"-" not in done.stdout:
                failures.append(done.stdout + done.stderr)

    pipes = [threading.Thread(target=pipe, args=(mails[n::3],)) for n in range(3)]
    for thread in pipes:
        thread.start()
    # And someone runs `mail process` by hand meanwhile.
    by_hand = subprocess.run([MADOGUCHI, "mail", "process"], env=env, timeout=180)
    for thread in pipes:
        thread.join(timeout=300)
    assert by_hand.returncode == 0 and failures == [], (failures, processes.logs())
    # Each command that ended took its heartbeat with it: the two workers' are left.
    assert _count(WorkerHeartbeat) == 2
    _wait(
        lambda: _count(InboundMail, InboundMail.status == InboundStatus.PROCESSED) == len(mails),
        60,
        "every mail processed",
        processes,
    )
    time.sleep(1)  # a late second processing would show now
    db.session.expire_all()
    assert _count(Ticket, Ticket.channel == Channel.EMAIL) == len(mails), processes.logs()
    assert _count(InboundMail) == len(mails)
    assert all(worker.poll() is None for worker in workers)


def test_an_imap_fetch_and_pipes_while_two_workers_run_make_one_ticket_per_mail(
    app, env, processes, dovecot_server
):
    mails = [
        citizen_mail(message_id=f"<imap{n}@docomo.ne.jp>", subject=f"住民票について{n}")
        for n in range(40)
    ]
    for raw in mails:
        _append(dovecot_server, raw)
    imap = {f"MADOGUCHI_{key}": str(value) for key, value in dovecot_server.settings.items()}
    for _ in "ab":
        processes.start("worker", "--lane", "mail-in", "--interval", "0.1")
    # The MTA delivers some of the same mail through the pipe meanwhile (one ticket still).
    piped = []

    def pipe():
        for raw in mails[::8]:
            done = subprocess.run(
                [MADOGUCHI, "mail", "ingest"], input=raw, env=env, capture_output=True, timeout=180
            )
            piped.append(done.returncode)

    pipe_thread = threading.Thread(target=pipe)
    pipe_thread.start()
    fetched = subprocess.run(
        [MADOGUCHI, "mail", "fetch", "--once"],
        env={**env, **imap},
        capture_output=True,
        timeout=300,
    )
    pipe_thread.join(timeout=300)
    assert fetched.returncode == 0, fetched.stderr.decode(errors="replace")[-2000:]
    assert piped == [0] * 5
    _wait(
        lambda: _count(InboundMail, InboundMail.status == InboundStatus.PROCESSED) == 40,
        60,
        "every mail processed",
        processes,
    )
    time.sleep(1)
    db.session.expire_all()
    assert _count(Ticket, Ticket.channel == Channel.EMAIL) == 40
    assert _count(InboundMail) == 40


# --- a worker killed while sending -------------------------------------------------------------


class SlowSink(SmtpSink):
    """Takes its time over each message: a worker killed meanwhile leaves it half-sent."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.3)
        return await super().handle_DATA(server, session, envelope)


def _slow_line(fake, seconds: float):
    def wsgi(environ, start_response):
        time.sleep(seconds)
        return fake(environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    serve_in_thread(server)
    return server, f"http://127.0.0.1:{server.server_port}"


def test_a_worker_killed_while_sending_sends_each_message_once_and_another_resumes(
    app, env, processes, make_ticket
):
    sink = SlowSink()
    smtp = _start_smtp(sink)
    fake, fake_server = start_fake_line()
    slow_server, slow_url = _slow_line(fake, 0.3)
    try:
        ticket = make_ticket(channel=Channel.EMAIL)
        contact = LineContact(user_id="U" + "c" * 32, following=True)
        db.session.add(contact)
        db.session.flush()
        mails = [
            mail.enqueue_mail(
                to=f"c{n}@example.jp", subject=f"ご案内{n}", text="本文", ticket=ticket
            )
            for n in range(10)
        ]
        pushes = [
            outbox.enqueue(channel="line", recipient=f"line-contact:{contact.id}", body=f"回答{n}")
            for n in range(10)
        ]
        db.session.flush()
        ids = {m.headers["message_id"] for m in mails}
        outbox_ids = [m.id for m in mails + pushes]
        ticket_id = ticket.id
        db.session.commit()  # then no ORM object is touched: that would hold SQLite's lock
        worker_env = {
            "MADOGUCHI_SMTP_HOST": "127.0.0.1",
            "MADOGUCHI_SMTP_PORT": str(sink.port),
            "MADOGUCHI_SMTP_SECURITY": "none",
            "MADOGUCHI_LINE_CHANNEL_SECRET": SECRET,
            "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "MADOGUCHI_LINE_API_HOST": slow_url,
        }
        lanes = ("--lane", "mail-out", "--lane", "line-out", "--interval", "0.1")
        first = processes.start("worker", *lanes, **worker_env)
        deadline = time.monotonic() + 120
        while (len(sink.raw) < 2 or len(fake.pushes) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.raw) >= 2 and len(fake.pushes) >= 2, processes.logs()
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        processes.start("worker", *lanes, **worker_env)

        def all_done():
            delivered = _count(
                OutboxMessage,
                OutboxMessage.id.in_(outbox_ids),
                OutboxMessage.status == OutboxStatus.DELIVERED,
            )
            return delivered == 20

        _wait(all_done, 60, "every message delivered", processes)
        assert time.monotonic() - killed_at < 30
        time.sleep(1)

        # Mail: every Message-ID arrived; one may have arrived twice (the one in the SMTP
        # server's hands when the worker died), and only when the timeline says so.
        received = Counter(parsed["Message-ID"] for _rcpt, parsed in sink.messages)
        assert set(received) == ids
        twice = [message_id for message_id, n in received.items() if n > 1]
        assert len(twice) <= 1 and sum(received.values()) <= 11
        notes = db.session.scalars(
            sa.select(TimelineEntry).where(
                TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == EntryKind.DELIVERY
            )
        ).all()
        if twice:
            assert any("送信済みの可能性があります" in note.body for note in notes)
        # LINE: each push accepted once; a repeated retry key was answered 409 and counted sent.
        assert len(fake.accepted_keys) == 10
        accepted_texts = Counter(
            text for r in fake.pushes if r.headers.get("X-Line-Retry-Key") for text in r.texts
        )
        assert set(accepted_texts) == {f"回答{n}" for n in range(10)}
    finally:
        smtp.stop()
        slow_server.shutdown()
        fake_server.shutdown()


# --- an SMTP server that never answers --------------------------------------------------------


def test_line_flows_while_the_smtp_server_never_answers(
    app,
    env,
    processes,
    make_ticket,
    silent_smtp,  # noqa: F811
):
    fake, fake_server = start_fake_line()
    try:
        ticket = make_ticket(channel=Channel.EMAIL)
        for n in range(3):
            mail.enqueue_mail(to=f"c{n}@example.jp", subject="ご案内", text="本文", ticket=ticket)
        users = ["U" + str(n) * 32 for n in range(5)]
        db.session.add(
            LineDelivery(
                body=body_of(*(text_event(f"相談{n}", user=u) for n, u in enumerate(users)))
            )
        )
        db.session.commit()
        started = time.monotonic()
        processes.start(
            "worker",
            "--interval",
            "0.2",
            MADOGUCHI_SMTP_HOST="127.0.0.1",
            MADOGUCHI_SMTP_PORT=str(silent_smtp),
            MADOGUCHI_SMTP_SECURITY="none",
            MADOGUCHI_LINE_CHANNEL_SECRET=SECRET,
            MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
            MADOGUCHI_LINE_API_HOST=fake.url,
        )
        _wait(
            lambda: _count(LineEvent, LineEvent.status == EventStatus.DONE) == 5,
            30,
            "LINE events processed",
            processes,
        )
        fake.wait_for(lambda: len(fake.pushes) + len(fake.replies) >= 5, timeout=30)
        # Seconds, not the minutes the mail's timeouts one after another would take.
        assert time.monotonic() - started < 25
        assert _count(Ticket, Ticket.channel == Channel.LINE) == 5
        stuck = _count(
            OutboxMessage,
            OutboxMessage.channel == "email",
            OutboxMessage.status == OutboxStatus.DELIVERED,
        )
        assert stuck == 0  # the mail really was waiting on the silent server
    finally:
        fake_server.shutdown()
