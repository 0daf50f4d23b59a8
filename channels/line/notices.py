"""LINE notices (お知らせ) to citizens who opted in, by segment, each segment its own consent.

Consents (``LineSubscription``): a district, an interest (消費生活・詐欺の注意喚起, 子育て,
イベント) and, for child-care, the child's age band. The citizen gives or withdraws each with
one tap in LINE: the rich menu's 「お知らせ設定」 (postback ``action=notices``) answers with the
current settings and one quick-reply button per topic (受け取る情報, 地区, 子どもの年齢); each
opens that topic's list (``action=notices&topic=…&page=…``), one button per choice, paged with
「次へ」 when the list is longer than LINE's 13 buttons allow (a city may configure many
districts). Each choice's button is a postback ``action=notice&topic=…&value=…&on=1|0``
handled by the webhook's processing. No member of staff is ever involved.

Sending: a supervisor composes a notice, chooses the segment, sees the recipient count and the
month's quota (LINE's /v2/bot/message/quota and /quota/consumption), and queues it: one outbox
row per batch of 500 contacts (LINE's multicast maximum), delivered by the LINE deliverer with a
fixed retry key per batch. Each batch is filtered again when it is sent, so an opt-out (or a
block) is honoured at once, even for a notice already queued.

A large segment (at least MADOGUCHI_LINE_NARROWCAST_THRESHOLD recipients) goes instead as one
narrowcast: a single outbox row which, when delivered, reads the segment again (opt-outs until
that moment are honoured), uploads those user ids as an audience (10,000 per request), waits
for the audience to be READY, and sends one narrowcast to it with a fixed retry key. LINE sends
in the background; a second outbox row asks its progress (GET …/progress/narrowcast), retried
with the outbox's back-off while LINE is still sending, and records the count LINE reports,
then deletes the audience. Two hundred multicasts become one request and one quota check on
LINE's side. What cannot be honoured is an opt-out after LINE accepted the narrowcast: LINE is
then sending, as it is for a multicast batch already sent.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

import sqlalchemy as sa

from channels.line import client
from channels.line.models import (
    LineContact,
    LineNotice,
    LineSubscription,
    NoticeStatus,
    SubscriptionTopic,
)
from consult.extensions import db
from consult.models import OutboxMessage, Role, Staff
from consult.services import audit, outbox
from consult.services.actor import Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import clean_text
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.line")

RECIPIENT_PREFIX = "line-notice:"
SEND_ROLES = (Role.SUPERVISOR, Role.ADMIN)
MAX_TEXT = 4800
INTERESTS = {
    "consumer": "消費生活・詐欺の注意喚起",
    "childcare": "子育て情報",
    "events": "イベント情報",
}
AGE_BANDS = {"0-2": "0〜2歳", "3-5": "3〜5歳", "6-12": "小学生"}
CHILDCARE = "childcare"
# The outbox rows of a narrowcast: the send, then the progress LINE reports.
NARROWCAST = "narrowcast"
PROGRESS = "narrowcast_progress"
AUDIENCE_MIN = 50  # LINE refuses a narrowcast to a smaller audience


def use_narrowcast(recipients: int) -> bool:
    from channels.line.settings import LineSettings

    threshold = LineSettings.current().narrowcast_threshold
    return bool(threshold) and recipients >= max(threshold, AUDIENCE_MIN)


def districts() -> tuple[str, ...]:
    from channels.line.settings import LineSettings

    return LineSettings.current().notice_districts


def topic_values(topic: SubscriptionTopic) -> dict[str, str]:
    if topic == SubscriptionTopic.INTEREST:
        return INTERESTS
    if topic == SubscriptionTopic.AGE:
        return AGE_BANDS
    return {d: d for d in districts()}


# --- consent, by the citizen's taps ------------------------------------------------------------


def subscriptions(contact: LineContact) -> set[tuple[str, str]]:
    rows = db.session.execute(
        sa.select(LineSubscription.topic, LineSubscription.value).where(
            LineSubscription.contact_id == contact.id
        )
    ).all()
    return {(SubscriptionTopic(t).value, v) for t, v in rows}


def set_consent(contact: LineContact, topic: str, value: str, on: bool) -> bool:
    """Give or withdraw one consent; False when the topic or value is not one we offer."""
    try:
        kind = SubscriptionTopic(topic)
    except ValueError:
        return False
    if value not in topic_values(kind):
        return False
    table = LineSubscription.__table__
    if on:
        exists = db.session.scalar(
            sa.select(table.c.id).where(
                table.c.contact_id == contact.id, table.c.topic == kind, table.c.value == value
            )
        )
        if exists is None:
            db.session.add(
                LineSubscription(
                    contact_id=contact.id, topic=kind, value=value, consented_at=utcnow()
                )
            )
            db.session.flush()
    else:
        db.session.execute(
            sa.delete(LineSubscription).where(
                LineSubscription.contact_id == contact.id,
                LineSubscription.topic == kind,
                LineSubscription.value == value,
            )
        )
    return True


def postback(topic: str, value: str, on: bool) -> str:
    return urlencode({"action": "notice", "topic": topic, "value": value, "on": "1" if on else "0"})


# LINE shows at most 13 quick-reply buttons under a message (more and it refuses the message).
QUICK_REPLY_MAX = 13
# A topic's list: every choice, one button each, with 「次へ」 and 「設定メニュー」 under a page
# when the list is longer than fits beside the menu button alone.
PAGE_SIZE = QUICK_REPLY_MAX - 2
TOPICS = (
    (SubscriptionTopic.INTEREST, "受け取る情報", "受け取る情報を選ぶ"),
    (SubscriptionTopic.DISTRICT, "お住まいの地区", "地区を選ぶ"),
    (SubscriptionTopic.AGE, "お子さんの年齢（子育て情報）", "子どもの年齢を選ぶ"),
)
MENU_BUTTON = {"label": "設定メニューへ", "data": urlencode({"action": "notices"})}


def _topic_page_data(topic: SubscriptionTopic, page: int) -> str:
    return urlencode({"action": "notices", "topic": topic.value, "page": str(page)})


def _summary(mine: set[tuple[str, str]], topic: SubscriptionTopic, title: str) -> str:
    chosen = [label for value, label in topic_values(topic).items() if (topic.value, value) in mine]
    return f"{title}：{'、'.join(chosen) if chosen else 'なし'}"


def menu(contact: LineContact) -> tuple[str, list[dict]]:
    """The settings as text, and one button per topic (受け取る情報, 地区, 子どもの年齢), each
    opening that topic's own list: however many districts the city configures, every choice
    stays a button (LINE shows at most 13 under a message)."""
    mine = subscriptions(contact)
    lines = ["お知らせの受け取り設定です。変更する項目のボタンを押してください。"]
    lines += [_summary(mine, topic, title) for topic, title, _ in TOPICS]
    buttons = [{"label": label, "data": _topic_page_data(topic, 0)} for topic, _, label in TOPICS]
    return "\n".join(lines), buttons


def _pages(count: int) -> int:
    """How many pages a list of `count` choices takes: one when it fits beside the menu button."""
    if count <= QUICK_REPLY_MAX - 1:
        return 1
    return (count + PAGE_SIZE - 1) // PAGE_SIZE


def topic_menu(
    contact: LineContact, topic: SubscriptionTopic, page: int = 0
) -> tuple[str, list[dict]]:
    """One topic's choices as text, and a page of buttons, one per choice: each turns that one
    consent on or off with one tap; 「次へ」 shows the next page (the last page's goes back to
    the first), 「設定メニューへ」 the topics."""
    mine = subscriptions(contact)
    values = list(topic_values(topic).items())
    pages = _pages(len(values))
    page = min(max(page, 0), pages - 1)
    size = len(values) if pages == 1 else PAGE_SIZE
    title = next(t for k, t, _ in TOPICS if k == topic)
    lines = [_summary(mine, topic, title)]
    if pages > 1:
        lines.append(f"ボタンを押すと、その場で変更できます（{page + 1}/{pages}ページ）。")
    else:
        lines.append("ボタンを押すと、その場で変更できます。")
    buttons: list[dict] = []
    for value, label in values[page * size : (page + 1) * size]:
        on = (topic.value, value) not in mine
        short = label[:12]
        buttons.append(
            {
                "label": (f"{short}を受け取る" if on else f"{short}を停止")[:20],
                "data": postback(topic.value, value, on),
            }
        )
    if pages > 1:
        following = (page + 1) % pages
        label = f"次へ（{following + 1}/{pages}）" if following else f"最初へ（1/{pages}）"
        buttons.append({"label": label, "data": _topic_page_data(topic, following)})
    buttons.append(MENU_BUTTON)
    return "\n".join(lines), buttons


def _page_of(topic: SubscriptionTopic, value: str) -> int:
    values = list(topic_values(topic))
    if _pages(len(values)) == 1 or value not in values:
        return 0
    return values.index(value) // PAGE_SIZE


def on_postback(contact: LineContact, data: str) -> tuple[str, list[dict]] | None:
    """The webhook's processing of a notice postback: the answer text and the buttons to go on
    with (after a change, the same page of the same list, so the next change is one tap)."""
    fields = parse_qs(data)
    action = (fields.get("action") or [""])[0]
    topic = (fields.get("topic") or [""])[0]
    if action == "notices":
        try:
            kind = SubscriptionTopic(topic)
        except ValueError:
            return menu(contact)
        page = (fields.get("page") or ["0"])[0]
        return topic_menu(contact, kind, int(page) if page.isdigit() else 0)
    value = (fields.get("value") or [""])[0]
    on = (fields.get("on") or [""])[0] == "1"
    if not set_consent(contact, topic, value, on):
        log.info("line notice postback not understood")
        return None
    kind = SubscriptionTopic(topic)
    label = topic_values(kind)[value]
    done = "受け取るように設定しました" if on else "受け取りを停止しました"
    text, buttons = topic_menu(contact, kind, _page_of(kind, value))
    return f"「{label}」のお知らせを{done}。\n{text}", buttons


# --- segments and sending ----------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    interest: str
    district: str | None = None
    age_band: str | None = None

    def check(self) -> Segment:
        if self.interest not in INTERESTS:
            raise ValidationFailed("お知らせの種類を選んでください。")
        if self.district and self.district not in districts():
            raise ValidationFailed("地区は選択肢から選んでください。")
        if self.age_band and (self.interest != CHILDCARE or self.age_band not in AGE_BANDS):
            raise ValidationFailed("子どもの年齢は、子育て情報のお知らせでだけ選べます。")
        return self

    @property
    def label(self) -> str:
        parts = [INTERESTS.get(self.interest, self.interest)]
        parts.append(f"{self.district}地区" if self.district else "全地区")
        if self.age_band:
            parts.append(AGE_BANDS.get(self.age_band, self.age_band))
        return "・".join(parts)


def _consents(topic: SubscriptionTopic, value: str):
    s = LineSubscription.__table__
    return (
        sa.select(s.c.id)
        .where(s.c.contact_id == LineContact.id, s.c.topic == topic, s.c.value == value)
        .exists()
    )


def recipients_query(segment: Segment, column=None):
    """The contacts (their row ids, or `column`) that follow the account and consented to
    every part of the segment."""
    conditions = [
        LineContact.following.is_(True),
        _consents(SubscriptionTopic.INTEREST, segment.interest),
    ]
    if segment.district:
        conditions.append(_consents(SubscriptionTopic.DISTRICT, segment.district))
    if segment.age_band:
        conditions.append(_consents(SubscriptionTopic.AGE, segment.age_band))
    return sa.select(column if column is not None else LineContact.id).where(*conditions)


def still_consenting(segment: Segment, contact_ids: list[int]) -> list[str]:
    """The LINE user ids of those of `contact_ids` who follow and consent to the segment now.

    Two lookups by the batch's ids (the consents' unique index leads with the contact, the
    contacts' primary key), so the plan never depends on the tables' statistics: a correlated
    EXISTS planned on stale statistics after a mass opt-in read 100,000 consents per batch."""
    if not contact_ids:
        return []
    s = LineSubscription.__table__
    wanted = {(SubscriptionTopic.INTEREST.value, segment.interest)}
    if segment.district:
        wanted.add((SubscriptionTopic.DISTRICT.value, segment.district))
    if segment.age_band:
        wanted.add((SubscriptionTopic.AGE.value, segment.age_band))
    held: dict[int, set] = {}
    rows = db.session.execute(
        sa.select(s.c.contact_id, s.c.topic, s.c.value).where(s.c.contact_id.in_(contact_ids))
    )
    for contact_id, topic, value in rows:
        held.setdefault(contact_id, set()).add((SubscriptionTopic(topic).value, value))
    ready = [i for i in contact_ids if wanted <= held.get(i, set())]
    if not ready:
        return []
    c = LineContact.__table__
    found = dict(
        db.session.execute(
            sa.select(c.c.id, c.c.user_id).where(c.c.id.in_(ready), c.c.following.is_(True))
        ).all()
    )
    return [found[i] for i in ready if i in found]


def count_recipients(segment: Segment) -> int:
    query = recipients_query(segment.check()).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(query)) or 0


def segment_of(notice: LineNotice) -> Segment:
    return Segment(notice.interest, notice.district, notice.age_band)


def current_quota() -> client.Quota | None:
    """The month's quota from LINE, or None when LINE cannot be asked (not configured, down)."""
    from channels.line.services import settings

    config = settings()
    if not config.configured:
        return None
    try:
        return client.quota(config)
    except (client.ApiError, OSError) as exc:
        log.warning("line quota unavailable: %s", type(exc).__name__)
        return None
    except Exception as exc:
        if type(exc).__module__.startswith("urllib3"):
            log.warning("line quota unavailable: %s", type(exc).__name__)
            return None
        raise


def draft_from_alert(alert_id: int, text: str, url: str) -> LineNotice:
    """A draft notice to those who chose consumer alerts, prepared when an alert is published;
    a supervisor sends it from the notices page after seeing the count and the quota."""
    notice = LineNotice(
        text=f"{text}\n詳しくは：{url}"[:MAX_TEXT],
        interest="consumer",
        status=NoticeStatus.DRAFT,
        alert_id=alert_id,
        created_at=utcnow(),
    )
    db.session.add(notice)
    db.session.flush()
    return notice


def on_alert_published(alert_id, title=None, text=None, url=None, **_):
    draft_from_alert(int(alert_id), text or title or "", url or "")


def drafts(limit: int = 20) -> list[LineNotice]:
    return list(
        db.session.scalars(
            sa.select(LineNotice)
            .where(LineNotice.status == NoticeStatus.DRAFT)
            .order_by(LineNotice.id.desc())
            .limit(limit)
        )
    )


def sent(limit: int = 20) -> list[LineNotice]:
    return list(
        db.session.scalars(
            sa.select(LineNotice)
            .where(LineNotice.status == NoticeStatus.QUEUED)
            .order_by(LineNotice.id.desc())
            .limit(limit)
        )
    )


def get_draft(actor: Actor, notice_id: int) -> LineNotice:
    actor.require(*SEND_ROLES)
    notice = db.session.get(LineNotice, notice_id)
    if notice is None or notice.status != NoticeStatus.DRAFT:
        raise NotFound("お知らせの下書きが見つかりません。")
    return notice


# The same text to the same segment by the same person within this time is a double click (or
# a second tab), not a second notice: thousands of citizens would get it twice.
DOUBLE_SEND_WINDOW = timedelta(minutes=10)
DOUBLE_SEND = (
    "同じ内容のお知らせを、同じ送信先に{minutes}分以内に送信しています。"
    "二重送信を防ぐため送信しませんでした。下の「送信したお知らせ」を確かめてください。"
)


def _refuse_double_send(staff: Staff | None, text: str, segment: Segment) -> None:
    """One person's sends one after another (their row locked on PostgreSQL; SQLite has one
    writer at a time), so two presses of 「送信する」 cannot both pass this check."""
    if staff is None:
        return
    db.session.execute(sa.select(Staff.id).where(Staff.id == staff.id).with_for_update())
    recent = db.session.scalar(
        sa.select(LineNotice.id).where(
            LineNotice.queued_by_id == staff.id,
            LineNotice.queued_at >= utcnow() - DOUBLE_SEND_WINDOW,
            LineNotice.text == text,
            LineNotice.interest == segment.interest,
            LineNotice.district.is_not_distinct_from(segment.district or None),
            LineNotice.age_band.is_not_distinct_from(segment.age_band or None),
        )
    )
    if recent is not None:
        raise ValidationFailed(
            DOUBLE_SEND.format(minutes=int(DOUBLE_SEND_WINDOW.total_seconds() // 60))
        )


def queue_notice(
    actor: Actor,
    text: str,
    segment: Segment,
    *,
    quota: client.Quota | None,
    draft_id: int | None = None,
    batch_size: int = client.MULTICAST_MAX,
) -> LineNotice:
    """Queue a notice: one outbox row per batch of contacts (at most 500, multicast's limit).

    Refused when no one is in the segment, or when the month's remaining quota is known and
    smaller than the recipients."""
    staff = actor.require(*SEND_ROLES)
    text = clean_text(text, "お知らせの本文", MAX_TEXT, required=True)
    segment.check()
    batch_size = max(1, min(batch_size, client.MULTICAST_MAX))
    ids = list(db.session.scalars(recipients_query(segment).order_by(LineContact.id)))
    if not ids:
        raise ValidationFailed("この条件でお知らせを受け取る設定の方はいません。")
    if quota is not None and quota.remaining is not None and len(ids) > quota.remaining:
        raise ValidationFailed(
            f"今月の残りの送信可能数（{quota.remaining:,}通）を超えるため送信できません"
            f"（送信先 {len(ids):,}人）。条件を絞るか、来月に送信してください。"
        )
    notice = None
    if draft_id is not None:
        notice = get_draft(actor, draft_id)
        claimed = db.session.execute(
            sa.update(LineNotice)
            .where(LineNotice.id == notice.id, LineNotice.status == NoticeStatus.DRAFT)
            .values(status=NoticeStatus.QUEUED)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            raise ValidationFailed("このお知らせはすでに送信されています。")
    else:
        _refuse_double_send(staff, text, segment)
        notice = LineNotice(created_by_id=staff.id if staff else None, created_at=utcnow())
        db.session.add(notice)
    notice.text = text
    notice.interest = segment.interest
    notice.district = segment.district or None
    notice.age_band = segment.age_band or None
    notice.status = NoticeStatus.QUEUED
    notice.queued_by_id = staff.id if staff else None
    notice.queued_at = utcnow()
    notice.recipient_count = len(ids)
    if use_narrowcast(len(ids)):
        notice.batch_count = 1
        db.session.flush()
        outbox.enqueue(
            channel="line",
            recipient=f"{RECIPIENT_PREFIX}{notice.id}",
            body=text,
            headers={"notice_id": notice.id, "kind": NARROWCAST, "retry_key": str(uuid.uuid4())},
        )
        audit.record(
            actor, "create", "line_notice", str(notice.id), f"{segment.label} {len(ids)}人 一斉"
        )
        return notice
    notice.batch_count = (len(ids) + batch_size - 1) // batch_size
    db.session.flush()
    now = utcnow()
    rows = [
        {
            "channel": "line",
            "recipient": f"{RECIPIENT_PREFIX}{notice.id}",
            "body": text,
            "headers": {
                "notice_id": notice.id,
                "batch": n,
                "contacts": ids[start : start + batch_size],
                "retry_key": str(uuid.uuid4()),
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n, start in enumerate(range(0, len(ids), batch_size))
    ]
    db.session.execute(sa.insert(OutboxMessage.__table__), rows)
    audit.record(actor, "create", "line_notice", str(notice.id), f"{segment.label} {len(ids)}人")
    return notice


def deliver(message: OutboxMessage) -> None:
    """One batch by multicast, to the contacts of the batch that still follow the account and
    still consent to the segment now (an opt-out between queueing and sending is honoured).

    The batch is counted in the notice's sent count once: the count and a mark on the outbox
    row are one commit, so a retry after a lost answer (LINE's 409 to the same retry key) counts
    a batch not yet counted, and a retry after a crash past the count sends nothing again."""
    from channels.line.services import settings
    from consult.services.outbox import PermanentFailure, TemporaryFailure

    config = settings()
    if not config.configured:
        raise TemporaryFailure("LINEの接続設定（シークレット・アクセストークン）がありません")
    headers = message.headers or {}
    notice = db.session.get(LineNotice, int(headers.get("notice_id") or 0))
    if notice is None:
        raise PermanentFailure("お知らせが見つかりません")
    if headers.get("kind") == NARROWCAST:
        return _send_narrowcast(config, message, notice)
    if headers.get("kind") == PROGRESS:
        return _narrowcast_progress(config, message, notice)
    if headers.get("counted") is not None:
        db.session.commit()
        return  # sent and counted; only the outbox's own record of it was lost
    contact_ids = [int(i) for i in headers.get("contacts") or []]
    user_ids = still_consenting(segment_of(notice), contact_ids)
    retry_key = headers.get("retry_key") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"o{message.id}"))
    notice_id, message_id = notice.id, message.id
    db.session.commit()  # no transaction open while LINE answers
    if not user_ids:
        return
    with _line_failures(), suppress_repeat():  # 409: LINE took this batch (same retry key)
        client.multicast(config, user_ids, [message.body], retry_key)
    _count_sent(notice_id, len(user_ids), message_id, headers)


def _count_sent(
    notice_id: int, count: int, message_id: int | None = None, headers: dict | None = None
) -> None:
    """Add to the notice's sent count; with an outbox row, mark it counted in the same commit."""
    db.session.execute(
        sa.update(LineNotice)
        .where(LineNotice.id == notice_id)
        .values(sent_count=LineNotice.sent_count + count)
    )
    if message_id is not None:
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(headers={**(headers or {}), "counted": count})
        )
    db.session.commit()


@contextmanager
def _line_failures():
    """LINE's answers and the network's failures as the outbox's temporary or permanent ones."""
    from consult.services.outbox import PermanentFailure, TemporaryFailure

    try:
        yield
    except client.ApiError as exc:
        if exc.status == 429 or exc.status >= 500 or exc.status == 0:
            raise TemporaryFailure(f"LINEが一時的に受け付けませんでした（{exc.status}）") from exc
        raise PermanentFailure(f"LINEが受け付けませんでした（{exc.status}）") from exc
    except OSError as exc:
        raise TemporaryFailure(f"LINEに接続できませんでした（{type(exc).__name__}）") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("urllib3"):
            raise TemporaryFailure(f"LINEに接続できませんでした（{type(exc).__name__}）") from exc
        raise


def _save_headers(message_id: int, headers: dict) -> None:
    """Keep how far a narrowcast got on its outbox row, committed at once, so that a retry
    (or another worker after a crash) goes on from there."""
    db.session.execute(
        sa.update(OutboxMessage).where(OutboxMessage.id == message_id).values(headers=headers)
    )
    db.session.commit()


def _send_narrowcast(config, message: OutboxMessage, notice: LineNotice) -> None:
    """Upload the segment as it is now as an audience, then one narrowcast to it."""
    from consult.services.outbox import PermanentFailure, TemporaryFailure

    state = dict(message.headers or {})
    notice_id, message_id, body = notice.id, message.id, message.body
    segment = segment_of(notice)
    with _line_failures():
        if state.get("audience_id") and not state.get("uploaded"):
            # An upload cut short: that audience is incomplete; a new one is made.
            with suppress(client.ApiError):
                client.delete_audience(config, int(state["audience_id"]))
            state.pop("audience_id")
        if not state.get("audience_id"):
            user_ids = list(
                db.session.scalars(
                    recipients_query(segment, LineContact.user_id).order_by(LineContact.id)
                )
            )
            db.session.commit()  # no transaction open while LINE answers
            if len(user_ids) < AUDIENCE_MIN:
                # So many opted out that LINE would refuse the audience: one multicast.
                if user_ids:
                    with suppress_repeat():
                        client.multicast(config, user_ids, [body], state["retry_key"])
                    _count_sent(notice_id, len(user_ids))
                return
            step = client.AUDIENCE_UPLOAD_MAX
            audience_id = client.create_audience(
                config, f"madoguchi notice {notice_id}", user_ids[:step]
            )
            state["audience_id"] = audience_id
            _save_headers(message_id, state)
            for start in range(step, len(user_ids), step):
                client.add_to_audience(config, audience_id, user_ids[start : start + step])
            state["uploaded"] = True
            state["audience_count"] = len(user_ids)
            _save_headers(message_id, state)
        audience_id = int(state["audience_id"])
        status, _size = client.audience_status(config, audience_id)
        if status == "IN_PROGRESS":
            raise TemporaryFailure("LINEがお知らせの送信先（オーディエンス）を準備中です")
        if status != "READY":
            raise PermanentFailure(f"LINEが送信先（オーディエンス）を作れませんでした（{status}）")
        request_id = client.narrowcast(config, audience_id, [body], state["retry_key"])
    outbox.enqueue(
        channel="line",
        recipient=f"{RECIPIENT_PREFIX}{notice_id}",
        body=body,
        headers={
            "notice_id": notice_id,
            "kind": PROGRESS,
            "request_id": request_id,
            "audience_id": audience_id,
        },
    )
    db.session.commit()


@contextmanager
def suppress_repeat():
    """A multicast LINE already accepted (409 to the same retry key) is not an error."""
    try:
        yield
    except client.ApiError as exc:
        if exc.status != 409:
            raise


def _narrowcast_progress(config, message: OutboxMessage, notice: LineNotice) -> None:
    """Ask LINE how the narrowcast went: while it sends, a temporary failure (the outbox asks
    again after its back-off); once done, the count LINE reports, and the audience goes."""
    from consult.services.outbox import PermanentFailure, TemporaryFailure

    headers = message.headers or {}
    notice_id = notice.id
    db.session.commit()
    with _line_failures():
        progress = client.narrowcast_progress(config, str(headers.get("request_id") or ""))
    if progress.phase in ("waiting", "sending"):
        raise TemporaryFailure(f"LINEが送信中です（{progress.phase}）")
    if headers.get("audience_id"):
        with suppress(client.ApiError, OSError):
            client.delete_audience(config, int(headers["audience_id"]))
    if progress.phase != "succeeded":
        raise PermanentFailure(
            f"LINEが送信できませんでした（{progress.phase}：{progress.reason or '理由不明'}）"
        )
    _count_sent(notice_id, progress.success or 0)
