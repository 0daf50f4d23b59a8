"""Replies from the ticket page, the deliverer against fake LINE, self-linking, the panel."""

from __future__ import annotations

import re

import sqlalchemy as sa

from channels.line.models import LineContact
from consult.extensions import db
from consult.models import AuditEvent, Channel, EntryKind, OutboxMessage, OutboxStatus, Ticket
from consult.services import citizens, outbox, tickets
from consult.services.actor import SYSTEM
from tests.channels.line.conftest import (
    body_of,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)
from tests.channels.line.test_link_step import postback_event
from tests.channels.line.test_processing import OPEN
from tests.helpers import sign_in


def link_step(at: int) -> dict:
    return postback_event("action=link", at)


def _line_ticket():
    db.session.remove()
    return db.session.scalar(sa.select(Ticket).where(Ticket.channel == Channel.LINE))


def _start(line_client, line_app, fake_line, text="相談があります"):
    post_webhook(line_client, body_of(text_event(text, at=OPEN)))
    run_worker(line_app)
    fake_line.requests.clear()
    return _line_ticket()


def _retry_now():
    db.session.execute(sa.update(OutboxMessage).values(next_attempt_at=sa.func.now()))
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .values(next_attempt_at=OutboxMessage.created_at)
    )
    db.session.commit()


def test_consultant_reply_is_pushed_with_display_name_only(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    staff = new_staff(full_name="山田 太郎", display_name="やまだ / Yamada")
    sign_in(line_client, staff)
    page = line_client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "LINEで送信" in page
    response = line_client.post(
        f"/channels/line/tickets/{ticket.number}/reply", data={"body": "窓口は2階です。"}
    )
    assert response.status_code == 302
    assert fake_line.pushes == []  # nothing leaves from inside the request
    run_worker(line_app)
    [push] = fake_line.pushes
    assert push.texts == ["［やまだ / Yamada］\n窓口は2階です。"]
    assert "山田" not in push.body.decode()
    ticket = _line_ticket()
    [out] = [e for e in ticket.timeline if e.kind == EntryKind.MESSAGE_OUT and e.author]
    assert out.body == "窓口は2階です。"


def test_empty_reply_is_refused_in_japanese(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    sign_in(line_client, new_staff())
    response = line_client.post(
        f"/channels/line/tickets/{ticket.number}/reply", data={"body": "  "}, follow_redirects=True
    )
    assert "返信の本文を入力してください。" in response.get_data(as_text=True)
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def _enqueue_reply(ticket, text="お返事です"):
    from channels.line import services

    staff = db.session.scalar(sa.select(tickets.Staff).limit(1))
    actor = tickets.Actor(staff, "127.0.0.1") if staff else SYSTEM
    message = services.send_reply(actor, ticket, text)
    db.session.commit()
    return message.id


def test_429_then_success_keeps_the_same_retry_key(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    message_id = _enqueue_reply(ticket)
    fake_line.script("/v2/bot/message/push", (429, {"message": "Too Many Requests"}))
    run_worker(line_app)
    db.session.remove()
    assert db.session.get(OutboxMessage, message_id).status == OutboxStatus.PENDING
    _retry_now()
    run_worker(line_app)
    first, second = fake_line.pushes
    assert first.headers["X-Line-Retry-Key"] == second.headers["X-Line-Retry-Key"]
    db.session.remove()
    assert db.session.get(OutboxMessage, message_id).status == OutboxStatus.DELIVERED


def test_repeated_retry_key_409_counts_as_delivered(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    message_id = _enqueue_reply(ticket)
    key = db.session.get(OutboxMessage, message_id).headers["retry_key"]
    fake_line.accepted_keys.add(key)  # LINE took an earlier attempt whose answer was lost
    run_worker(line_app)
    db.session.remove()
    assert db.session.get(OutboxMessage, message_id).status == OutboxStatus.DELIVERED


def test_400_marks_failed_with_lines_answer_on_the_timeline(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    message_id = _enqueue_reply(ticket)
    fake_line.script(
        "/v2/bot/message/push", (400, {"message": "The property, 'to', in the request is invalid."})
    )
    run_worker(line_app)
    db.session.remove()
    message = db.session.get(OutboxMessage, message_id)
    assert message.status == OutboxStatus.FAILED
    ticket = _line_ticket()
    [failure] = [e for e in ticket.timeline if e.kind == EntryKind.DELIVERY]
    assert "LINEが受け付けませんでした（400）" in failure.body
    assert "'to', in the request is invalid" in failure.body
    sign_in(line_client, new_staff())
    page = line_client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "送信に失敗しました" in page and "送信失敗" in page


def test_5xx_is_retried(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    message_id = _enqueue_reply(ticket)
    fake_line.script("/v2/bot/message/push", (500, {"message": "Internal error"}))
    run_worker(line_app)
    db.session.remove()
    message = db.session.get(OutboxMessage, message_id)
    assert message.status == OutboxStatus.PENDING and "500" in message.last_error


def test_blocked_contact_gets_nothing(line_client, line_app, fake_line):
    ticket = _start(line_client, line_app, fake_line)
    message_id = _enqueue_reply(ticket)
    contact = db.session.scalar(sa.select(LineContact))
    contact.following = False
    db.session.commit()
    run_worker(line_app)
    assert fake_line.pushes == []
    db.session.remove()
    assert db.session.get(OutboxMessage, message_id).status == OutboxStatus.FAILED


def test_ticket_page_says_line_is_not_configured(app_factory):
    app = app_factory()
    with app.app_context():
        from channels.line.models import LineTicket

        contact = LineContact(user_id="U" + "c" * 32, following=True)
        db.session.add(contact)
        ticket = tickets.create_ticket(SYSTEM, channel=Channel.LINE, subject="LINE：テスト")
        db.session.add(LineTicket(ticket=ticket, contact=contact))
        db.session.commit()
        client = app.test_client()
        sign_in(client, new_staff())
        page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
        assert "LINEの接続設定" in page and "LINEでの送受信はできません" in page
        db.session.remove()


def test_self_link_with_reference_and_one_time_code(line_client, line_app, fake_line):
    citizen = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="高松 花子"))
    counter = tickets.create_ticket(
        SYSTEM, channel=Channel.COUNTER, subject="窓口での相談", citizen=citizen
    )
    db.session.commit()
    number, citizen_id = counter.number, citizen.id
    sign_in(line_client, new_staff())
    page = line_client.post(f"/channels/line/tickets/{number}/link-code").get_data(as_text=True)
    code = re.search(r'id="link-code">(\d{6})<', page).group(1)
    db.session.remove()
    assert db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.object_type == "line_link_code")
    )
    # Each attempt follows the explicit step (the tap on 「相談番号と連携する」).
    # A wrong code first: refused, nothing linked.
    wrong = "000000" if code != "000000" else "111111"
    post_webhook(
        line_client, body_of(link_step(OPEN), text_event(f"{number} {wrong}", at=OPEN + 1))
    )
    run_worker(line_app)
    db.session.remove()
    assert db.session.scalar(sa.select(LineContact)).citizen_id is None
    # Full-width digits as a phone keyboard may send them.
    fullwidth = f"{number} {code}".translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    post_webhook(line_client, body_of(link_step(OPEN + 1), text_event(fullwidth, at=OPEN + 2)))
    run_worker(line_app)
    db.session.remove()
    assert db.session.scalar(sa.select(LineContact)).citizen_id == citizen_id
    assert "連携が完了しました" in fake_line.sent_texts()[-1]
    # The code works once.
    post_webhook(
        line_client, body_of(link_step(OPEN + 2), text_event(f"{number} {code}", at=OPEN + 3))
    )
    run_worker(line_app)
    assert "正しくない" in fake_line.sent_texts()[-1]
    # The next LINE consultation carries the citizen.
    post_webhook(line_client, body_of(text_event("引っ越しの手続き", at=OPEN + 4)))
    run_worker(line_app)
    assert _line_ticket().citizen_id == citizen_id


def test_media_download_is_for_desk_staff_and_audited(line_client, line_app, fake_line):
    fake_line.content["m1"] = (b"%PDF-1.4 test", "application/pdf")
    event = text_event("x", at=OPEN)
    event["message"] = {
        "type": "file",
        "id": "m1",
        "fileName": "申請書.pdf",
        "fileSize": 13,
        "quoteToken": "q",
    }
    post_webhook(line_client, body_of(event))
    run_worker(line_app)
    from channels.line.models import LineMedia

    media_id = db.session.scalar(sa.select(LineMedia.id))
    assert line_client.get(f"/channels/line/media/{media_id}").status_code == 302  # to login
    sign_in(line_client, new_staff("officer"))
    assert line_client.get(f"/channels/line/media/{media_id}").status_code == 403
    desk = line_app.test_client()
    sign_in(desk, new_staff())
    # Never the file as LINE sent it: its converted form (無害化); this one is a broken PDF.
    from consult.services import safe_files

    safe_files.convert_due()
    response = desk.get(f"/channels/line/media/{media_id}")
    assert response.status_code == 302 and "/files/" in response.headers["Location"]
    viewer = desk.get(response.headers["Location"])
    assert viewer.status_code == 200 and b"%PDF-1.4 test" not in viewer.data
    assert "このファイルは隔離されています" in viewer.get_data(as_text=True)
    db.session.remove()
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.object_type == "safe_file"))
    assert desk.get("/channels/line/media/99999").status_code == 404


def test_outbox_deliverer_registered(line_app):
    from channels.line import tasks

    assert outbox.deliverer_for("line") is tasks.deliver
