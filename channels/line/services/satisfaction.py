"""The satisfaction question (満足度): one quick reply when a LINE case closes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from channels.line.models import LineContact, LineDelivery, LineEvent
from channels.line.services.common import CHANNEL
from channels.line.services.contacts import line_ticket
from channels.line.services.outgoing import enqueue, record_message
from consult.extensions import db
from consult.models import OutboxMessage, Ticket
from consult.services.errors import ValidationFailed

SATISFACTION_ACTION = "satisfaction"
SATISFACTION_QUESTION = (
    "ご相談ありがとうございました。対応にご満足いただけましたか。"
    "（回答は任意です。お名前や相談内容とは結び付けずに集計します）"
)


SATISFACTION_CHOICES = (
    (5, "満足"),
    (4, "やや満足"),
    (3, "ふつう"),
    (2, "やや不満"),
    (1, "不満"),
)


def ask_satisfaction(ticket: Ticket, **_kwargs) -> OutboxMessage | None:
    """The ticket-closed receiver: the question as a quick reply, through the outbox, to a
    LINE case's citizen who still follows the account. Asked once per ticket."""
    from consult.voice import services as voice

    link = line_ticket(ticket)
    if link is None or not link.contact.following:
        return None
    token = voice.ask(ticket, CHANNEL)
    if token is None:
        return None
    quick_reply = [
        {"label": label, "data": f"action={SATISFACTION_ACTION}&s={score}&t={token}"}
        for score, label in SATISFACTION_CHOICES
    ]
    return record_message(
        link.contact,
        ticket,
        SATISFACTION_QUESTION,
        entry_body="満足度のおたずね（クイックリプライ）を送りました",
        quick_reply=quick_reply,
    )


def on_satisfaction(contact: LineContact, event: LineEvent) -> bool:
    """A tap on a satisfaction quick reply: store the answer (anonymous, single-use), thank
    the citizen, and take the score and the token out of the stored webhook body and event,
    which carry the LINE user id (so the kept raw input cannot tie the answer to the person)."""
    from consult.voice import services as voice

    raw = str((event.payload.get("postback") or {}).get("data") or "")
    values = parse_qs(raw)
    token = (values.get("t") or [""])[0]
    score = (values.get("s") or [""])[0]
    try:
        voice.answer(token, score)
        text = "ご回答ありがとうございました。今後の対応の改善に役立てます。"
    except voice.AlreadyAnswered:
        text = "このアンケートは回答済みか、回答期限が過ぎています。ご協力ありがとうございました。"
    except ValidationFailed:
        text = "回答を受け付けられませんでした。表示された選択肢から選んでください。"
    _scrub_postback(event, raw)
    enqueue(contact, text)
    return True


def _scrub_postback(event: LineEvent, raw: str) -> None:
    payload = json.loads(json.dumps(event.payload))
    payload.setdefault("postback", {})["data"] = f"action={SATISFACTION_ACTION}"
    event.payload = payload
    delivery = db.session.get(LineDelivery, event.delivery_id)
    if delivery is not None and raw:
        body = delivery.body
        for form in {raw, json.dumps(raw)[1:-1], json.dumps(raw, ensure_ascii=True)[1:-1]}:
            body = body.replace(form, f"action={SATISFACTION_ACTION}")
        delivery.body = body
