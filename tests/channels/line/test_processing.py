"""Events become tickets and timeline entries; answers leave through the outbox to fake LINE."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from channels.line import tasks
from channels.line.models import EventStatus, LineContact, LineEvent, LineMedia
from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, OutboxStatus, Staff, Ticket
from consult.services import tickets
from consult.services.actor import SYSTEM
from consult.settings import override as override_settings
from consult.timeutil import TOKYO, WEEKDAYS_JA, tokyo_today
from tests.channels.line.conftest import (
    USER,
    body_of,
    event_id,
    fixture_text,
    follow_event,
    post_webhook,
    run_worker,
    text_event,
)

OPEN = int(datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO).timestamp() * 1000)  # Tuesday 10:00
CLOSED = int(datetime(2026, 1, 1, 3, 0, tzinfo=TOKYO).timestamp() * 1000)  # New Year 3:00


def _line_tickets():
    db.session.remove()
    return list(
        db.session.scalars(
            sa.select(Ticket).where(Ticket.channel == Channel.LINE).order_by(Ticket.id)
        )
    )


def _entries(ticket, kind=None):
    return [e for e in ticket.timeline if kind is None or e.kind == kind]


def test_text_opens_ticket_and_first_message_gets_auto_answer(line_client, line_app, fake_line):
    post_webhook(line_client, body_of(text_event("児童手当の申請について教えてください", at=OPEN)))
    run_worker(line_app)
    [ticket] = _line_tickets()
    assert ticket.subject == "LINE：児童手当の申請について教えてください"
    [message_in] = _entries(ticket, EntryKind.MESSAGE_IN)
    assert message_in.body == "児童手当の申請について教えてください"
    [auto] = _entries(ticket, EntryKind.MESSAGE_OUT)
    assert f"相談番号 {ticket.number}" in auto.body and "時間外" not in auto.body
    [push] = fake_line.pushes
    assert push.json["to"] == USER
    assert push.texts == [auto.body]
    assert push.headers.get("X-Line-Retry-Key")


def test_out_of_hours_answer_says_when_a_consultant_replies(line_client, line_app, fake_line):
    post_webhook(line_client, body_of(text_event("夜分にすみません", at=CLOSED)))
    run_worker(line_app)
    [text] = fake_line.sent_texts()
    assert "ただいま受付時間外です" in text
    assert "1月1日(木) 09:00以降" in text


def test_out_of_hours_answer_once_per_closed_spell_not_per_message(
    line_client, line_app, fake_line
):
    minute = 60_000
    post_webhook(
        line_client,
        body_of(*(text_event(f"夜の相談 {n}", at=CLOSED + n * minute) for n in range(3))),
    )
    run_worker(line_app)
    post_webhook(line_client, body_of(text_event("もう一通", at=CLOSED + 30 * minute)))
    run_worker(line_app)
    [told] = fake_line.sent_texts()
    assert "1月1日(木) 09:00以降" in told
    # The same night: four messages on the ticket, one answer. The next closed spell (after
    # 15:00 on New Year's Day) is told again, of the next opening.
    evening = int(datetime(2026, 1, 1, 16, 0, tzinfo=TOKYO).timestamp() * 1000)
    post_webhook(line_client, body_of(text_event("夕方の相談", at=evening)))
    run_worker(line_app)
    [ticket] = _line_tickets()
    assert len(_entries(ticket, EntryKind.MESSAGE_IN)) == 5
    answers = [e.body for e in _entries(ticket, EntryKind.MESSAGE_OUT)]
    assert len(answers) == 2 and "1月2日(金) 09:00以降" in answers[1]
    assert fake_line.sent_texts() == answers


def test_second_message_joins_open_ticket_and_new_one_after_close(line_client, line_app, fake_line):
    post_webhook(line_client, body_of(text_event("一通目", at=OPEN)))
    run_worker(line_app)
    post_webhook(line_client, body_of(text_event("二通目", at=OPEN + 60_000)))
    run_worker(line_app)
    [ticket] = _line_tickets()
    assert [e.body for e in _entries(ticket, EntryKind.MESSAGE_IN)] == ["一通目", "二通目"]
    assert len(fake_line.pushes) == 1  # in hours, only the first message is answered
    tickets.close(SYSTEM, ticket, "案内しました")
    db.session.commit()
    post_webhook(line_client, body_of(text_event("別の相談です", at=OPEN + 120_000)))
    run_worker(line_app)
    first, second = _line_tickets()
    assert second.id != first.id
    assert [e.body for e in _entries(second, EntryKind.MESSAGE_IN)] == ["別の相談です"]


def test_order_within_a_chat_follows_line_timestamps(line_client, line_app):
    late = text_event("3", at=OPEN + 3000)
    early = text_event("1", at=OPEN + 1000)
    middle = text_event("2", at=OPEN + 2000)
    post_webhook(line_client, body_of(late))  # arrives first
    post_webhook(line_client, body_of(middle, early))
    run_worker(line_app)
    [ticket] = _line_tickets()
    assert [e.body for e in _entries(ticket, EntryKind.MESSAGE_IN)] == ["1", "2", "3"]


def test_same_event_five_times_makes_one_entry(line_client, line_app):
    event = text_event("一度だけ", at=OPEN)
    for n in range(5):
        redelivered = dict(event, deliveryContext={"isRedelivery": n > 0})
        post_webhook(line_client, body_of(redelivered))
        run_worker(line_app)
    [ticket] = _line_tickets()
    assert [e.body for e in _entries(ticket, EntryKind.MESSAGE_IN)] == ["一度だけ"]


def test_follow_greets_with_hours_and_privacy_unfollow_stops_sending(
    line_client, line_app, fake_line
):
    post_webhook(line_client, body_of(follow_event()))
    run_worker(line_app)
    [text] = fake_line.sent_texts()
    assert "受付時間" in text and "個人情報" in text
    assert "https://soudan.example.lg.jp/faq" in text
    unfollow = {
        "type": "unfollow",
        "mode": "active",
        "timestamp": OPEN,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": False},
    }
    post_webhook(line_client, body_of(unfollow))
    run_worker(line_app)
    db.session.remove()
    contact = db.session.scalar(sa.select(LineContact))
    assert contact.following is False


def test_sticker_and_location_shown_on_timeline(line_client, line_app):
    sticker = json.loads(fixture_text("java-sticker-keywords-array.json"))["events"][0]
    location = json.loads(fixture_text("java-location.json"))["events"][0]
    for n, event in enumerate((sticker, location)):
        event["source"] = {"type": "user", "userId": USER}
        event["timestamp"] = OPEN + n
        event["message"]["quoteToken"] = "q"
        event["webhookEventId"] = event_id()
        event["deliveryContext"] = {"isRedelivery": False}
    post_webhook(line_client, body_of(sticker, location))
    run_worker(line_app)
    [ticket] = _line_tickets()
    bodies = [e.body for e in _entries(ticket, EntryKind.MESSAGE_IN)]
    assert bodies[0].startswith("［スタンプ］")
    assert bodies[1].startswith("［位置情報］") and "緯度" in bodies[1]


def _postback(data: str, at: int) -> dict:
    return {
        "type": "postback",
        "mode": "active",
        "timestamp": at,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": False},
        "postback": {"data": data},
    }


def test_rich_menu_postbacks_are_answered(line_client, line_app, fake_line):
    events = [
        _postback("action=consult", OPEN),
        _postback("action=booking", OPEN + 1),
        _postback("action=faq", OPEN + 2),
    ]
    post_webhook(line_client, body_of(*events))
    run_worker(line_app)
    texts = fake_line.sent_texts()
    assert "そのまま送ってください" in texts[0]
    assert "https://soudan.example.lg.jp/booking/" in texts[1]
    assert "https://soudan.example.lg.jp/faq" in texts[2]
    assert _line_tickets() == []  # menu taps open no ticket


def test_reply_token_used_while_valid(line_client, line_app, fake_line):
    post_webhook(line_client, body_of(text_event("すぐ返事", reply_token="rt-123")))
    run_worker(line_app)
    assert fake_line.pushes == []
    [reply] = fake_line.replies
    assert reply.json["replyToken"] == "rt-123"


def test_image_fetched_with_blob_api_and_attached(line_client, line_app, fake_line):
    fake_line.content["325708"] = (b"\x89PNG\r\n\x1a\nfake-image", "image/png")
    image = {
        "type": "message",
        "mode": "active",
        "timestamp": OPEN,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": "x",
        "message": {
            "type": "image",
            "id": "325708",
            "quoteToken": "q",
            "contentProvider": {"type": "line"},
        },
    }
    post_webhook(line_client, body_of(image))
    run_worker(line_app)
    [blob] = fake_line.calls("/v2/bot/message/325708/content")
    assert blob.headers["Authorization"] == "Bearer test-access-token"
    db.session.remove()
    media = db.session.scalar(sa.select(LineMedia))
    assert media.size == len(b"\x89PNG\r\n\x1a\nfake-image")
    assert media.content_type == "image/png"


def test_poison_event_is_kept_with_error_and_others_flow(line_client, line_app):
    post_webhook(line_client, body_of(text_event("普通のメッセージ", at=OPEN)))
    tasks.expand_pending()
    db.session.remove()
    # A stored event that crashes processing (its message part is not an object).
    bad = db.session.scalar(sa.select(LineEvent))
    bad.payload = dict(bad.payload, message="broken")
    db.session.commit()
    other = text_event("別の人から", user="U" + "b" * 32, at=OPEN)
    post_webhook(line_client, body_of(other))
    override_settings(line_app, LINE_MAX_EVENT_ATTEMPTS=1)
    run_worker(line_app)
    db.session.remove()
    statuses = sorted(e.status for e in db.session.scalars(sa.select(LineEvent)))
    assert statuses == sorted([EventStatus.FAILED, EventStatus.DONE])
    failed = db.session.scalar(sa.select(LineEvent).where(LineEvent.status == EventStatus.FAILED))
    assert failed.last_error and failed.attempts == 1
    assert len(_line_tickets()) == 1


def test_outbox_rows_never_hold_the_line_user_id(line_client, line_app):
    post_webhook(line_client, body_of(text_event("個人情報", at=OPEN)))
    run_worker(line_app)
    db.session.remove()
    for message in db.session.scalars(sa.select(OutboxMessage)):
        assert USER not in message.recipient and USER not in json.dumps(message.headers)
        assert message.status == OutboxStatus.DELIVERED


def _admin_sets_exception(app, day, *, closed, opens="", closes="", note=""):
    """An administrator saves an exception on the kernel's calendar page, as in the browser."""
    from consult.services import staff as staff_service
    from tests.consult.http import call
    from tests.helpers import PASSWORD, sign_in

    admin = db.session.scalar(sa.select(Staff).where(Staff.login == "cal-admin"))
    if admin is None:
        admin = staff_service.create_staff(
            None,
            login="cal-admin",
            full_name="管理 花子",
            display_name="かんり / Kanri",
            role="admin",
            password=PASSWORD,
        )
        db.session.commit()
    desk = sign_in(app, admin)
    data = {"day": day.isoformat(), "opens": opens, "closes": closes, "note": note}
    if closed:
        data["closed"] = "y"
    response = call(app, desk, "POST", "/admin/calendar/exceptions", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


USUAL_HOURS = "受付時間：平日 8:30〜17:15／土日祝・年末年始 9:00〜15:00"


def test_an_administrators_exception_changes_the_out_of_hours_answer(
    line_client, line_app, fake_line
):
    """New Year's Day closed and the 2nd shortened: the answer says so, and the next opening."""
    _admin_sets_exception(line_app, date(2026, 1, 1), closed=True, note="臨時休業")
    _admin_sets_exception(
        line_app, date(2026, 1, 2), closed=False, opens="10:00", closes="12:00", note="短縮"
    )
    post_webhook(line_client, body_of(text_event("夜分にすみません", at=CLOSED)))
    run_worker(line_app)
    [text] = fake_line.sent_texts()
    assert "ただいま受付時間外です" in text
    # Without the exceptions it would be 1月1日(木) 09:00 (test_out_of_hours_answer_says_...).
    assert "1月2日(金) 10:00以降" in text
    assert text.endswith(
        f"{USUAL_HOURS}\n臨時の変更：1月1日(木)は休業（臨時休業）、1月2日(金)は10:00〜12:00（短縮）"
    )


def test_an_administrators_exception_changes_the_greeting(line_client, line_app, fake_line):
    post_webhook(line_client, body_of(follow_event()))
    run_worker(line_app)
    [before] = fake_line.sent_texts()
    assert f"{USUAL_HOURS}\nセンターで相談番号" in before
    tomorrow = tokyo_today() + timedelta(days=1)
    _admin_sets_exception(line_app, tomorrow, closed=True, note="設備点検")
    post_webhook(line_client, body_of(follow_event(user="U" + "1" * 32)))
    run_worker(line_app)
    [_, after] = fake_line.sent_texts()
    label = f"{tomorrow.month}月{tomorrow.day}日({WEEKDAYS_JA[tomorrow.weekday()]})"
    assert f"{USUAL_HOURS}\n臨時の変更：{label}は休業（設備点検）\nセンターで相談番号" in after
