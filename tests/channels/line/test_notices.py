"""LINE notices to citizens who opted in, by segment: one-tap consent in LINE, the staff page
(recipients and the month's quota), multicast in batches of 500 through the outbox to the fake
Messaging API over HTTP with the real SDK client, checked against the SDK's own models."""

from __future__ import annotations

import json

import sqlalchemy as sa

from channels.line.models import LineContact, LineNotice, LineSubscription, SubscriptionTopic
from consult.extensions import db
from consult.models import OutboxMessage, OutboxStatus, Staff
from consult.services.actor import Actor
from consult.timeutil import utcnow
from tests.channels.line.conftest import (
    USER,
    body_of,
    event_id,
    line_settings,
    new_staff,
    now_ms,
    post_webhook,
    run_worker,
)
from tests.helpers import sign_in


def postback(data: str, user: str = USER, at: int | None = None) -> dict:
    at = at or now_ms()
    return {
        "type": "postback",
        "mode": "active",
        "timestamp": at,
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"rt-{event_id()}",
        "postback": {"data": data},
    }


def _tap(line_client, line_app, data: str, user: str = USER) -> None:
    post_webhook(line_client, body_of(postback(data, user)))
    run_worker(line_app)


def _answers(fake_line) -> list[dict]:
    """The messages LINE was asked to send (reply or push), newest last."""
    found = [r for r in fake_line.requests if r.path.endswith(("/reply", "/push"))]
    return [m for r in found for m in r.json["messages"]]


def _mine(user: str = USER) -> set[tuple[str, str]]:
    db.session.remove()
    rows = db.session.execute(
        sa.select(LineSubscription.topic, LineSubscription.value)
        .join(LineContact, LineContact.id == LineSubscription.contact_id)
        .where(LineContact.user_id == user)
    ).all()
    return {(SubscriptionTopic(t).value, v) for t, v in rows}


def _last(fake_line):
    """The last message LINE was asked to send, read by LINE's own model."""
    from linebot.v3.messaging import TextMessage

    return TextMessage.from_dict(_answers(fake_line)[-1])


def _buttons(message) -> dict[str, str]:
    return {i.action.label: i.action.data for i in message.quick_reply.items}


def test_a_citizen_opts_in_and_out_with_one_tap_each(line_client, line_app, fake_line):
    _tap(line_client, line_app, "action=notices")
    menu = _last(fake_line)
    assert menu.text.startswith("お知らせの受け取り設定です。")
    assert "受け取る情報：なし" in menu.text and "お住まいの地区：なし" in menu.text
    assert list(_buttons(menu)) == ["受け取る情報を選ぶ", "地区を選ぶ", "子どもの年齢を選ぶ"]
    _tap(line_client, line_app, _buttons(menu)["受け取る情報を選ぶ"])
    labels = _buttons(_last(fake_line))
    assert list(labels) == [
        "消費生活・詐欺の注意喚起を受け取る",
        "子育て情報を受け取る",
        "イベント情報を受け取る",
        "設定メニューへ",
    ]
    consumer_on = labels["消費生活・詐欺の注意喚起を受け取る"]
    assert consumer_on == "action=notice&topic=interest&value=consumer&on=1"

    _tap(line_client, line_app, consumer_on)
    assert _mine() == {("interest", "consumer")}
    answer = _last(fake_line)
    assert answer.text.startswith(
        "「消費生活・詐欺の注意喚起」のお知らせを受け取るように設定しました。\n"
        "受け取る情報：消費生活・詐欺の注意喚起"
    )
    # The same list comes again, with the opposite button: the next change is one tap too.
    labels = _buttons(answer)
    assert labels["消費生活・詐欺の注意喚起を停止"].endswith("value=consumer&on=0")
    _tap(line_client, line_app, labels["設定メニューへ"])
    assert "受け取る情報：消費生活・詐欺の注意喚起" in _last(fake_line).text

    _tap(line_client, line_app, "action=notice&topic=interest&value=childcare&on=1")
    _tap(line_client, line_app, "action=notice&topic=age&value=0-2&on=1")
    _tap(line_client, line_app, "action=notice&topic=district&value=北部&on=1")
    assert _mine() == {
        ("interest", "consumer"),
        ("interest", "childcare"),
        ("age", "0-2"),
        ("district", "北部"),
    }
    _tap(line_client, line_app, "action=notice&topic=interest&value=consumer&on=0")
    assert ("interest", "consumer") not in _mine()
    # A value we do not offer changes nothing and is answered by nothing.
    sent = len(_answers(fake_line))
    _tap(line_client, line_app, "action=notice&topic=district&value=月面&on=1")
    assert ("district", "月面") not in _mine() and len(_answers(fake_line)) == sent


# A city with many districts (Imabari has more than 20): more than LINE's 13 buttons.
DISTRICTS = (
    *("北部", "中部", "南部", "東部", "西部", "朝倉", "玉川", "波方", "大西", "菊間"),
    *("吉海", "宮窪", "伯方", "上浦", "大三島", "関前", "桜井", "富田", "乃万", "日高"),
)


def test_each_of_twenty_districts_is_one_tap_on_its_page(app_factory, fake_line):
    """Every district stays a button (LINE refuses a message with more than 13): the districts
    come in pages with 「次へ」, and after a tap the same page comes again."""
    app = app_factory(**line_settings(fake_line, LINE_NOTICE_DISTRICTS=",".join(DISTRICTS)))
    with app.app_context():
        client = app.test_client()
        _tap(client, app, "action=notices")
        _tap(client, app, _buttons(_last(fake_line))["地区を選ぶ"])
        first = _last(fake_line)
        assert first.text == (
            "お住まいの地区：なし\nボタンを押すと、その場で変更できます（1/2ページ）。"
        )
        assert list(_buttons(first)) == [f"{d}を受け取る" for d in DISTRICTS[:11]] + [
            "次へ（2/2）",
            "設定メニューへ",
        ]
        pages = 0
        for district in DISTRICTS:
            buttons = _buttons(_last(fake_line))
            if f"{district}を受け取る" not in buttons:
                _tap(client, app, buttons["次へ（2/2）"])
                pages += 1
                buttons = _buttons(_last(fake_line))
                assert list(buttons) == [f"{d}を受け取る" for d in DISTRICTS[11:]] + [
                    "最初へ（1/2）",
                    "設定メニューへ",
                ]
            _tap(client, app, buttons[f"{district}を受け取る"])
            assert ("district", district) in _mine()
            answer = _last(fake_line)
            assert answer.text.startswith(f"「{district}」のお知らせを受け取るように設定しました。")
            assert _buttons(answer)[f"{district}を停止"].endswith("on=0")
        assert pages == 1  # one 「次へ」 in all: each district was one tap on the page shown
        assert _mine() == {("district", d) for d in DISTRICTS}
        # Withdrawing is one tap too, and 「最初へ」 goes back to the first page.
        _tap(client, app, _buttons(_last(fake_line))["日高を停止"])
        assert ("district", "日高") not in _mine()
        _tap(client, app, _buttons(_last(fake_line))["最初へ（1/2）"])
        _tap(client, app, _buttons(_last(fake_line))["北部を停止"])
        assert _mine() == {("district", d) for d in DISTRICTS[1:-1]}
        # LINE took every answer (the fake refuses more than 13 buttons or a long label, 400).
        answers = [r for r in fake_line.requests if r.path.endswith(("/reply", "/push"))]
        assert len(answers) == 2 + 20 + 1 + 3
        assert all(len(m["quickReply"]["items"]) <= 13 for m in _answers(fake_line))
        db.session.remove()
        statuses = set(db.session.scalars(sa.select(OutboxMessage.status)))
        assert statuses == {OutboxStatus.DELIVERED}


def _contacts(n: int, *, district: str | None = "北部", interest: str = "consumer") -> list[int]:
    """n following contacts who consented to the interest (and district), in bulk."""
    now = utcnow()
    start = db.session.scalar(sa.select(sa.func.count()).select_from(LineContact)) or 0
    db.session.execute(
        sa.insert(LineContact.__table__),
        [
            {
                "user_id": f"U{start + i:032x}",
                "following": True,
                "created_at": now,
            }
            for i in range(n)
        ],
    )
    ids = list(
        db.session.scalars(sa.select(LineContact.id).order_by(LineContact.id.desc()).limit(n))
    )
    rows = [
        {"contact_id": i, "topic": "interest", "value": interest, "consented_at": now} for i in ids
    ]
    if district:
        rows += [
            {"contact_id": i, "topic": "district", "value": district, "consented_at": now}
            for i in ids
        ]
    db.session.execute(sa.insert(LineSubscription.__table__), rows)
    db.session.commit()
    return sorted(ids)


def test_a_supervisor_sees_recipients_and_quota_then_sends_in_batches_of_500(
    line_client, line_app, fake_line
):
    from linebot.v3.messaging import MulticastRequest

    _contacts(1201, district="北部")
    _contacts(30, district="南部")
    _contacts(7, district="北部", interest="events")
    fake_line.quota_limit = 5000
    fake_line.used = 1234
    sign_in(line_client, new_staff("supervisor"))
    page = line_client.get("/staff/line/notices").get_data(as_text=True)
    assert (
        "今月の送信数：<strong>1,234通</strong> ／ 上限 5,000通（残り <strong>3,766通</strong>）"
        in page
    )
    form = {"text": "北部地区で還付金詐欺の電話が続いています。", "interest": "consumer",
            "district": "北部", "age_band": "", "check": "1"}  # fmt: skip
    page = line_client.post("/staff/line/notices", data=form).get_data(as_text=True)
    assert "送信先：<strong>1,201人</strong>" in page and "送信後の今月の残り：2,565通" in page
    assert "この内容で1,201人に送信する" in page
    assert fake_line.multicasts == []

    form.pop("check")
    response = line_client.post("/staff/line/notices", data={**form, "send": "1"})
    assert response.status_code == 302
    assert fake_line.multicasts == []  # nothing leaves from inside the request
    page = line_client.get("/staff/line/notices").get_data(as_text=True)
    assert "1,201人に送信します（3回に分けて送信）" in page
    run_worker(line_app)
    batches = [MulticastRequest.from_json(r.body.decode()) for r in fake_line.multicasts]
    assert [len(b.to) for b in batches] == [500, 500, 201]
    assert len({u for b in batches for u in b.to}) == 1201
    assert all(b.messages[0].text == form["text"] for b in batches)
    keys = {r.headers["X-Line-Retry-Key"] for r in fake_line.multicasts}
    assert len(keys) == 3
    db.session.remove()
    notice = db.session.scalar(sa.select(LineNotice))
    assert (notice.recipient_count, notice.batch_count, notice.sent_count) == (1201, 3, 1201)
    statuses = db.session.scalars(sa.select(OutboxMessage.status)).all()
    assert statuses == [OutboxStatus.DELIVERED] * 3
    # Outbox rows name no one: contact row ids only, never a LINE user id.
    assert all(
        "U" not in json.dumps(m.headers) for m in db.session.scalars(sa.select(OutboxMessage))
    )
    page = line_client.get("/staff/line/notices").get_data(as_text=True)
    assert "今月の送信数：<strong>2,435通</strong>" in page


def test_sending_more_than_the_month_allows_is_refused(line_client, line_app, fake_line):
    _contacts(40, district=None)
    fake_line.quota_limit = 1000
    fake_line.used = 970
    sign_in(line_client, new_staff("supervisor"))
    form = {"text": "お知らせ", "interest": "consumer", "district": "", "age_band": "", "send": "1"}
    page = line_client.post("/staff/line/notices", data=form).get_data(as_text=True)
    assert "今月の残りの送信可能数（30通）を超えるため送信できません（送信先 40人）。" in page
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    # An age band is for child-care only; bad input is a Japanese message, nothing queued.
    form.update(age_band="0-2")
    page = line_client.post("/staff/line/notices", data=form).get_data(as_text=True)
    assert "子どもの年齢は、子育て情報のお知らせでだけ選べます。" in page
    # Not a supervisor: not allowed.
    consultant = sign_in(line_app, new_staff("consultant"))
    assert consultant.get("/staff/line/notices").status_code == 403


def test_an_opt_out_or_a_block_after_queueing_is_honoured_at_once(line_client, line_app, fake_line):
    from linebot.v3.messaging import MulticastRequest

    from channels.line import notices
    from channels.line.services.contacts import contact_for

    ids = _contacts(3, district=None, interest="childcare")
    # The citizen of USER opts in by tapping, with a child of 0-2.
    _tap(line_client, line_app, "action=notice&topic=interest&value=childcare&on=1")
    _tap(line_client, line_app, "action=notice&topic=age&value=0-2&on=1")
    db.session.execute(
        sa.insert(LineSubscription.__table__),
        [{"contact_id": ids[0], "topic": "age", "value": "0-2", "consented_at": utcnow()}],
    )
    db.session.commit()
    supervisor = Actor(new_staff("supervisor"), "127.0.0.1")
    supervisor_id = supervisor.staff_id
    segment = notices.Segment("childcare", age_band="0-2")
    assert notices.count_recipients(segment) == 2
    notices.queue_notice(supervisor, "0〜2歳児の健診のお知らせ", segment, quota=None)
    db.session.commit()
    # Before the worker sends: the citizen taps 「停止」, and the other contact blocks us.
    _tap_without_sending(line_client, line_app, "action=notice&topic=age&value=0-2&on=0")
    db.session.execute(
        sa.update(LineContact).where(LineContact.id == ids[0]).values(following=False)
    )
    db.session.commit()
    fake_line.requests.clear()
    run_worker(line_app)
    assert fake_line.multicasts == []  # no one is left in the segment: nothing is sent
    db.session.remove()
    assert contact_for(USER).id not in ids
    # Opting in again takes one tap and the next notice reaches them.
    _tap(line_client, line_app, "action=notice&topic=age&value=0-2&on=1")
    supervisor = Actor(db.session.get(Staff, supervisor_id), "127.0.0.1")
    notices.queue_notice(supervisor, "2通目", segment, quota=None)
    db.session.commit()
    run_worker(line_app)
    [request] = fake_line.multicasts
    assert MulticastRequest.from_json(request.body.decode()).to == [USER]


def _tap_without_sending(line_client, line_app, data: str) -> None:
    """The tap is processed (the consent changes) before any outbox row is sent."""
    from channels.line import tasks

    post_webhook(line_client, body_of(postback(data)))
    tasks.worker_task()
    db.session.remove()


def test_a_published_alert_becomes_a_draft_notice_sent_from_the_page(
    line_client, line_app, fake_line
):
    from linebot.v3.messaging import MulticastRequest

    from faq.alerts import services as alerts

    _contacts(3, district=None)
    author = Actor(new_staff("consultant"), "127.0.0.1")
    approver = Actor(new_staff("supervisor"), "127.0.0.1")
    alert = alerts.create(
        author,
        {
            "title": "偽の宅配業者のSMS",
            "method": "不在通知を装ったSMSのリンク",
            "advice": "開かない",
        },
    )
    alerts.submit(author, alert)
    alerts.approve(approver, alert)
    db.session.commit()
    alert_id = alert.id
    sign_in(line_client, approver.staff)
    page = line_client.get("/staff/line/notices").get_data(as_text=True)
    assert "送信前の下書き" in page and "（注意喚起から作成）" in page
    draft = db.session.scalar(sa.select(LineNotice))
    page = line_client.get(f"/staff/line/notices?draft={draft.id}").get_data(as_text=True)
    assert "【注意喚起】偽の宅配業者のSMS" in page
    form = {"text": draft.text, "interest": "consumer", "district": "", "age_band": "",
            "draft_id": str(draft.id), "send": "1"}  # fmt: skip
    assert line_client.post("/staff/line/notices", data=form).status_code == 302
    # The same draft cannot be sent twice.
    page = line_client.post("/staff/line/notices", data=form, follow_redirects=True)
    assert "お知らせの下書きが見つかりません。" in page.get_data(as_text=True)
    run_worker(line_app)
    [request] = fake_line.multicasts
    sent = MulticastRequest.from_json(request.body.decode())
    assert len(sent.to) == 3
    assert sent.messages[0].text.startswith("【注意喚起】偽の宅配業者のSMS")
    assert f"https://soudan.example.lg.jp/alerts/{alert_id}" in sent.messages[0].text


def test_a_double_press_of_send_queues_the_notice_once(line_client, line_app, fake_line):
    """「送信する」 pressed twice at once (a double click, or two tabs): one notice, one set of
    batches; the other press is told why nothing more was sent. Another text is not refused."""
    import threading

    _contacts(12, district="北部")
    supervisor = new_staff("supervisor")
    clients = [sign_in(line_app.test_client(), supervisor) for _ in range(2)]
    form = {"text": "北部地区で架空請求のはがきが届いています。", "interest": "consumer",
            "district": "北部", "age_band": "", "send": "1"}  # fmt: skip
    barrier = threading.Barrier(2)
    answers = []

    def press(client):
        barrier.wait()
        response = client.post("/staff/line/notices", data=form)
        answers.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(code for code, _ in answers) == [302, 422]
    [refused] = [page for code, page in answers if code == 422]
    assert "同じ内容のお知らせを、同じ送信先に10分以内に送信しています。" in refused
    assert "北部地区で架空請求のはがきが届いています。" in refused  # what was typed stays
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LineNotice)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1
    # Another text to the same people is a new notice.
    again = clients[0].post("/staff/line/notices", data={**form, "text": "続報です。"})
    assert again.status_code == 302
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LineNotice)) == 2


def _due_now() -> None:
    """The outbox's back-off over: pending rows are due."""
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .values(next_attempt_at=OutboxMessage.created_at)
    )
    db.session.commit()


def test_a_failed_batch_is_retried_with_its_retry_key_and_counted_once(
    line_client, line_app, fake_line
):
    """LINE answers a multicast 500, then 429: the outbox tries again with the same
    X-Line-Retry-Key (LINE sends a batch once per key), and the notice counts the batch once.
    A batch LINE took whose answer was lost (409 to the retry) counts once too, and a row sent
    and counted whose delivery was not recorded (a worker that died) sends and counts nothing
    more."""
    from linebot.v3.messaging import MulticastRequest

    from channels.line import notices

    _contacts(7, district="北部")
    supervisor_id = new_staff("supervisor").id
    supervisor = Actor(db.session.get(Staff, supervisor_id), "127.0.0.1")
    segment = notices.Segment("consumer", "北部")
    notice_id = notices.queue_notice(supervisor, "還付金詐欺にご注意", segment, quota=None).id
    db.session.commit()
    path = "/v2/bot/message/multicast"
    fake_line.script(path, (500, {"message": "Internal error"}), (429, {"message": "Too Many"}))
    for _ in range(2):
        run_worker(line_app)
        assert db.session.scalar(sa.select(OutboxMessage.status)) == OutboxStatus.PENDING
        assert db.session.get(LineNotice, notice_id).sent_count == 0
        _due_now()
    run_worker(line_app)
    first, second, third = fake_line.multicasts
    keys = {r.headers["X-Line-Retry-Key"] for r in (first, second, third)}
    assert len(keys) == 1
    assert len(MulticastRequest.from_json(third.body.decode()).to) == 7
    assert fake_line.multicast_users == 7  # LINE sent it once
    row = db.session.scalar(sa.select(OutboxMessage))
    assert row.status == OutboxStatus.DELIVERED
    assert db.session.get(LineNotice, notice_id).sent_count == 7

    # The worker died after counting, before recording the delivery: nothing goes again.
    row.status = OutboxStatus.PENDING
    db.session.commit()
    _due_now()
    run_worker(line_app)
    assert len(fake_line.multicasts) == 3
    assert db.session.get(LineNotice, notice_id).sent_count == 7

    # LINE took a batch but its answer never came (a 500 after sending): the retry gets 409.
    supervisor = Actor(db.session.get(Staff, supervisor_id), "127.0.0.1")
    again = notices.queue_notice(supervisor, "続報です", segment, quota=None).id
    db.session.commit()
    [pending] = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
    ).all()
    pending_id = pending.id
    fake_line.accepted_keys.add(pending.headers["retry_key"])
    fake_line.script(path, (500, {"message": "Internal error"}))
    run_worker(line_app)
    _due_now()
    run_worker(line_app)
    assert db.session.get(OutboxMessage, pending_id).status == OutboxStatus.DELIVERED
    assert db.session.get(LineNotice, again).sent_count == 7
