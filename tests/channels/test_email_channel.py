"""Mail in and out on both databases: ingest, dedupe, threading, quarantine, replies, bounces."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from channels.email import services, tasks
from channels.email.models import InboundMail, InboundStatus, MailAttachment
from channels.email.parse import parse
from channels.email.services import processing
from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, OutboxStatus, Ticket
from consult.services import citizens, outbox, queue
from consult.services.actor import SYSTEM
from consult.services.jis import encode_iso2022jp
from consult.timeutil import utcnow
from tests.helpers import csrf_token_from, sign_in

CITIZEN_TEXT = "はじめまして。①児童手当の申請について～教えてください。髙橋"


def citizen_mail(message_id="<c1@docomo.ne.jp>", subject="児童手当について", extra="", body=None):
    head = (
        f"From: =?UTF-8?B?6auZ5qmL?= <Taka@Docomo.ne.jp>\r\nTo: soudan@example.lg.jp\r\n"
        f"Subject: {subject}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n{extra}"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
    )
    return head.encode("utf-8") + encode_iso2022jp(body or CITIZEN_TEXT)


def _timeline(ticket):
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id).timeline


def test_a_new_mail_becomes_one_email_ticket_and_a_second_delivery_changes_nothing(app):
    outcome = tasks.ingest(citizen_mail())
    ticket = outcome.ticket
    assert ticket.channel == Channel.EMAIL and ticket.subject == "児童手当について"
    [entry] = [e for e in _timeline(ticket) if e.kind == EntryKind.MESSAGE_IN]
    assert entry.body == CITIZEN_TEXT
    again = tasks.ingest(citizen_mail())
    assert again.duplicate and again.ticket.id == ticket.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMail)) == 1
    assert services.raw_path(outcome.inbound).read_bytes() == citizen_mail()


def test_known_address_links_the_citizen(app):
    known = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="高橋 花子", email="taka@docomo.ne.jp")
    )
    db.session.commit()
    ticket = tasks.ingest(citizen_mail()).ticket
    assert ticket.citizen_id == known.id


def test_bad_mail_is_quarantined_kept_and_retried_after_a_fix(app):
    no_from = b"Subject: x\r\nMessage-ID: <nf@x>\r\n\r\nbody"
    outcome = tasks.ingest(no_from)
    assert outcome.inbound.status == InboundStatus.QUARANTINED
    assert "差出人" in outcome.inbound.reason
    assert services.raw_path(outcome.inbound).read_bytes() == no_from
    # The next mail flows on.
    assert tasks.ingest(citizen_mail()).ticket is not None
    huge = citizen_mail("<big@x>", body="大" * 10) + b"A" * (30 * 2**20)
    big = tasks.ingest(huge).inbound
    assert big.status == InboundStatus.QUARANTINED and "大きすぎ" in big.reason
    broken = b'From: a@example.jp\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\n'
    assert tasks.ingest(broken).inbound.status == InboundStatus.PROCESSED


def test_a_process_killed_after_storing_loses_nothing(app):
    inbound, created = tasks.store_raw(citizen_mail("<crash@x>"))
    assert created and inbound.status == InboundStatus.PENDING  # "killed" here
    assert tasks.process_pending() == 1
    assert tasks.process_pending() == 0
    db.session.expire_all()
    assert db.session.get(InboundMail, inbound.id).status == InboundStatus.PROCESSED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1


def test_auto_replies_open_no_ticket(app):
    auto = citizen_mail("<auto@x>", subject="Re: x", extra="Auto-Submitted: auto-replied\r\n")
    assert tasks.ingest(auto).inbound.status == InboundStatus.IGNORED
    subject = (
        "=?UTF-8?B?" + __import__("base64").b64encode("【自動応答】不在です".encode()).decode()
    )
    # The subject's words alone do not make a mail automatic (issue 14): its headers do.
    marked = citizen_mail("<auto2@x>", subject=subject + "?=", extra="X-Autoreply: yes\r\n")
    assert tasks.ingest(marked).ticket is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0


def test_reply_from_the_ticket_page_threads_and_arrives_in_iso_2022_jp(
    app_factory, smtp_server, make_staff
):
    app = app_factory(
        **smtp_server.settings, MAIL_ISO2022JP_DOMAINS="docomo.ne.jp", MAIL_AUTO_ACK=True
    )
    client = app.test_client()
    with app.app_context():
        ticket = tasks.ingest(citizen_mail()).ticket
        number = ticket.number
        staff = make_staff("consultant", display_name="やまだ / Yamada")
        sign_in(client, staff)
        page = client.get(f"/tickets/{number}").get_data(as_text=True)
        assert "返信する" in page and "受付確認（自動）" in page
        reply = "髙橋様\n①の件、承知しました～。"
        response = client.post(
            f"/email/tickets/{number}/reply",
            data={"body": reply, "csrf_token": csrf_token_from(page)},
        )
        assert response.status_code == 302
        outbox.run_once()
        assert len(smtp_server.raw) == 2  # the acknowledgement once, then the reply
        raw = smtp_server.raw[1]
        assert b'charset="ISO-2022-JP"' in raw or b"charset=ISO-2022-JP" in raw
        sent = parse(raw)
        assert sent.subject == f"Re: 児童手当について [#{number}]"
        assert sent.text.startswith(reply) and "市民相談センター" in sent.text
        assert sent.from_name == "やまだ / Yamada"
        assert sent.in_reply_to == ["<c1@docomo.ne.jp>"]
        assert sent.message_id.endswith("@example.lg.jp>")
        assert parse(smtp_server.raw[0]).subject == f"Re: 児童手当について [#{number}]"

        # The citizen answers the reply: it lands on the same ticket.
        answer = citizen_mail(
            "<c2@docomo.ne.jp>",
            subject="Re: x",
            extra=f"In-Reply-To: {sent.message_id}\r\n",
            body="ありがとうございました。\n\n> 髙橋様\n> ①の件",
        )
        assert tasks.ingest(answer).ticket.id == ticket.id
        # A fallback: no threading headers, but the ticket number in the subject.
        by_number = citizen_mail("<c3@docomo.ne.jp>", subject=f"Re: [#{number}]")
        assert tasks.ingest(by_number).ticket.id == ticket.id
        page = client.get(f"/tickets/{number}").get_data(as_text=True)
        assert "ありがとうございました。" in page and "引用部分を表示" in page
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 1


def test_a_bounce_marks_the_reply_failed_on_the_timeline(app, make_staff):
    from consult.services.actor import Actor

    ticket = tasks.ingest(citizen_mail()).ticket
    staff = make_staff("consultant")
    services.send_reply(Actor(staff, "127.0.0.1"), ticket, "ご回答です。")
    db.session.commit()
    message = db.session.scalar(sa.select(OutboxMessage))
    bounce = (
        "From: MAILER-DAEMON@mx.docomo.ne.jp\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <b1@mx>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; taka@docomo.ne.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message.headers['message_id']}\r\n--r--\r\n"
    ).encode()
    outcome = tasks.ingest(bounce)
    assert outcome.inbound.kind == "bounce"
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).status == OutboxStatus.FAILED
    [failure] = [e for e in _timeline(ticket) if e.kind == EntryKind.DELIVERY]
    assert "550 5.1.1 User unknown" in failure.body


def test_attachments_are_staff_only_and_downloads_audited(app, client, login_as):
    raw = (
        "From: a@example.jp\r\nSubject: 書類\r\nMessage-ID: <att@x>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n添付します\r\n--b\r\n"
        "Content-Type: application/pdf\r\nContent-Disposition: attachment; "
        "filename*=UTF-8''%E7%94%B3%E8%AB%8B%E6%9B%B8.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    ).encode()
    ticket = tasks.ingest(raw).ticket
    row = db.session.scalar(sa.select(MailAttachment))
    assert row.filename == "申請書.pdf"
    assert client.get(f"/email/attachments/{row.id}").status_code == 302  # login first
    login_as("officer")
    assert client.get(f"/email/attachments/{row.id}").status_code == 403
    client.post("/logout")
    login_as("consultant")
    # Never the attachment as received: its converted form (無害化, tests/consult/test_sanitise).
    response = client.get(f"/email/attachments/{row.id}")
    assert response.status_code == 302 and "/files/" in response.headers["Location"]
    viewer = client.get(response.headers["Location"])
    assert viewer.status_code == 200 and b"%PDF-" not in viewer.data
    assert "安全な形式に変換中" in viewer.get_data(as_text=True)
    from consult.models import AuditEvent

    assert db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.object_type == "safe_file", AuditEvent.detail == f"ticket={ticket.number}"
        )
    )
    assert ticket.number in client.get(f"/tickets/{ticket.number}").get_data(as_text=True)


def test_admin_sees_quarantine_and_retries(app, client, login_as):
    outcome = tasks.ingest(b"Subject: x\r\nMessage-ID: <q@x>\r\n\r\nbody")
    login_as("admin")
    page = client.get("/email/inbound?status=quarantined").get_data(as_text=True)
    assert "差出人（From）のメールアドレスがありません。" in page
    response = client.post(f"/email/inbound/{outcome.inbound.id}/retry")
    assert response.status_code == 302
    assert "隔離されたままです" in client.get("/email/inbound").get_data(as_text=True)


def test_reply_with_an_empty_body_is_refused_in_japanese(app, client, login_as):
    ticket = tasks.ingest(citizen_mail()).ticket
    login_as("consultant")
    response = client.post(f"/email/tickets/{ticket.number}/reply", data={"body": "  "})
    assert response.status_code == 422
    assert "返信本文" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_cli_ingest_prints_the_ticket_number_and_worker_processes_leftovers(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "ingest"], input=citizen_mail())
    assert result.exit_code == 0, result.output
    number = db.session.scalar(sa.select(Ticket.number))
    assert result.output.strip() == number
    again = runner.invoke(args=["mail", "ingest"], input=citizen_mail())
    assert again.output.strip() == number  # the same mail twice: the same ticket
    quarantined = runner.invoke(args=["mail", "ingest"], input=b"Subject: x\r\n\r\nno sender")
    assert quarantined.exit_code == 0 and "隔離しました" in quarantined.output
    tasks.store_raw(citizen_mail("<left@x>", subject="残り"))
    worker = runner.invoke(args=["worker", "--once"])
    assert worker.exit_code == 0, worker.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 2


def test_a_batch_commits_the_good_mail_and_quarantines_the_broken_one_alone(app, monkeypatch):
    first = citizen_mail("<b1@x>", subject="一通目")
    no_from = b"Subject: x\r\nMessage-ID: <b2@x>\r\n\r\nbody"
    failing = citizen_mail("<b3@x>", subject="壊れる")
    reply = citizen_mail("<b4@x>", subject="Re: 一通目", extra="In-Reply-To: <b1@x>\r\n")
    last = citizen_mail("<b5@x>", subject="最後")
    real_add = processing._add_message

    def add_message(inbound, ticket, parsed, *args, **kwargs):
        result = real_add(inbound, ticket, parsed, *args, **kwargs)
        if parsed.subject == "壊れる":  # after its ticket and number: the savepoint undoes them
            raise RuntimeError("boom")
        return result

    monkeypatch.setattr(processing, "_add_message", add_message)
    outcomes = tasks.ingest_many([first, no_from, failing, reply, first, last])
    statuses = [o.inbound.status for o in outcomes]
    assert statuses == [
        InboundStatus.PROCESSED,
        InboundStatus.QUARANTINED,
        InboundStatus.QUARANTINED,
        InboundStatus.PROCESSED,
        InboundStatus.PROCESSED,
        InboundStatus.PROCESSED,
    ]
    assert "差出人" in outcomes[1].inbound.reason and "RuntimeError" in outcomes[2].inbound.reason
    assert outcomes[4].duplicate and outcomes[3].ticket.id == outcomes[0].ticket.id
    db.session.expire_all()
    numbers = list(db.session.scalars(sa.select(Ticket.number).order_by(Ticket.id)))
    assert len(numbers) == 2 and numbers[1].endswith("000002")  # no gap left by the failure
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InboundMail)) == 5
    # The broken one is retried after the fix, once.
    monkeypatch.setattr(processing, "_add_message", real_add)
    assert tasks.process_batch([outcomes[2].inbound.id])[0].status == InboundStatus.PROCESSED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 3


def test_a_crash_after_the_batch_was_stored_leaves_it_to_be_processed_once(app, monkeypatch):
    raws = [citizen_mail(f"<k{i}@x>", subject=f"件名{i}") for i in range(5)]

    def crash(_ids):
        raise KeyboardInterrupt  # the process is killed between storing and processing

    monkeypatch.setattr(tasks, "process_batch", crash)
    with pytest.raises(KeyboardInterrupt):
        tasks.ingest_many(raws)
    db.session.rollback()
    monkeypatch.undo()
    # The next process (another holder) finds the stored mail claimed by one that stopped
    # beating STALE_SECONDS ago (consult.services.queue), and takes it back.
    monkeypatch.setattr(queue, "_worker_id", None)
    db.session.execute(
        sa.update(InboundMail).values(
            claimed_at=utcnow() - timedelta(seconds=queue.STALE_SECONDS + 1)
        )
    )
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0
    pending = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(InboundMail)
        .where(InboundMail.status == InboundStatus.PENDING)
    )
    assert pending == 5
    assert tasks.process_pending() == 5
    assert tasks.process_pending() == 0
    assert tasks.ingest_many(raws)[0].duplicate
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 5
    # The batch reserved numbers ahead and gave back what it did not use: no gap after it.
    tasks.ingest_many([b"Subject: x\r\nMessage-ID: <nofrom@x>\r\n\r\nbody"])
    later = tasks.ingest(citizen_mail("<k9@x>", subject="あと")).ticket.number
    numbers = sorted(db.session.scalars(sa.select(Ticket.number)))
    assert [n[-6:] for n in numbers] == ["000001", "000002", "000003", "000004", "000005", "000006"]
    assert later == numbers[-1]


def test_a_failing_batch_commit_loses_nothing(app, monkeypatch):
    raws = [citizen_mail(f"<f{i}@x>", subject=f"件名{i}") for i in range(3)]
    real_commit, calls = db.session.commit, []

    def commit():
        calls.append(1)
        if len(calls) == 3:  # 1: stored rows, 2: their ids read, 3: the batch (then again)
            raise RuntimeError("connection lost")
        return real_commit()

    monkeypatch.setattr(db.session, "commit", commit)
    outcomes = tasks.ingest_many(raws)
    assert [o.inbound.status for o in outcomes] == [InboundStatus.PROCESSED] * 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 3


def test_the_acknowledgement_tells_the_hours_with_the_administrators_exceptions(
    app_factory, smtp_server, make_staff
):
    """Mail's acknowledgement says the kernel's hours, and an exception changes what it says."""
    from consult.timeutil import WEEKDAYS_JA, tokyo_today
    from tests.helpers import sign_in

    app = app_factory(**smtp_server.settings, MAIL_AUTO_ACK=True)
    with app.app_context():
        tasks.ingest(citizen_mail())
        outbox.run_once()
        before = parse(smtp_server.raw[0]).text
        assert "窓口・電話の受付時間：平日 8:30〜17:15／土日祝・年末年始 9:00〜15:00\n" in before
        assert "臨時の変更" not in before
        in_three_days = tokyo_today() + timedelta(days=3)
        admin = sign_in(app, make_staff("admin"))
        response = admin.post(
            "/admin/calendar/exceptions",
            data={"day": in_three_days.isoformat(), "opens": "9:00", "closes": "12:00"},
        )
        assert response.status_code == 302
        db.session.commit()
        tasks.ingest(citizen_mail("<c2@docomo.ne.jp>", subject="別の相談"))
        outbox.run_once()
        after = parse(smtp_server.raw[1]).text
        label = (
            f"{in_three_days.month}月{in_three_days.day}日({WEEKDAYS_JA[in_three_days.weekday()]})"
        )
        assert f"臨時の変更：{label}は9:00〜12:00\n" in after
