"""LINE notices to a large segment by narrowcast: the recipients uploaded as an audience
(10,000 ids a request), one narrowcast to it, its progress asked through the outbox with
retries; every request to the fake Messaging API read back with the SDK's own models; opt-outs
until the upload honoured; the quota shown before sending."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from channels.line.models import LineContact, LineNotice, LineSubscription
from consult.extensions import db
from consult.models import OutboxMessage, OutboxStatus
from consult.services.actor import Actor
from consult.settings import override as override_settings
from consult.timeutil import utcnow
from tests.channels.line.conftest import new_staff, run_worker
from tests.channels.line.test_notices import _contacts
from tests.helpers import sign_in

PROGRESS = "/v2/bot/message/progress/narrowcast"


def _user_ids(contact_ids: list[int]) -> set[str]:
    return set(
        db.session.scalars(sa.select(LineContact.user_id).where(LineContact.id.in_(contact_ids)))
    )


def _statuses() -> list[OutboxStatus]:
    db.session.remove()
    return list(db.session.scalars(sa.select(OutboxMessage.status).order_by(OutboxMessage.id)))


def _due_now() -> None:
    """The outbox's back-off, passed: what waits for a retry is due."""
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def test_a_large_segment_goes_as_one_narrowcast_to_an_uploaded_audience(
    line_client, line_app, fake_line
):
    from linebot.v3.audience import AddAudienceToAudienceGroupRequest, CreateAudienceGroupRequest
    from linebot.v3.messaging import AudienceRecipient, NarrowcastRequest

    override_settings(line_app, LINE_NARROWCAST_THRESHOLD=1000)
    north = _contacts(10_050, district="北部")
    _contacts(20, district="南部")
    fake_line.quota_limit = 50_000
    fake_line.used = 1234
    sign_in(line_client, new_staff("supervisor"))
    form = {"text": "北部地区で還付金詐欺の電話が続いています。", "interest": "consumer",
            "district": "北部", "age_band": ""}  # fmt: skip
    page = line_client.post("/staff/line/notices", data={**form, "check": "1"})
    text = page.get_data(as_text=True)
    assert "送信先：<strong>10,050人</strong>" in text and "送信後の今月の残り：38,716通" in text
    assert "送信先をLINEに登録（オーディエンス）して一度に送信します" in text
    response = line_client.post("/staff/line/notices", data={**form, "send": "1"})
    assert response.status_code == 302
    assert fake_line.uploads == [] and fake_line.narrowcasts == []  # not from the request
    page = line_client.get("/staff/line/notices").get_data(as_text=True)
    assert "10,050人に送信します（送信先をLINEに登録して一度に送信）" in page

    # LINE is still sending when first asked: the progress row waits for a retry.
    fake_line.script(PROGRESS, (200, {"phase": "sending", "acceptedTime": "2026-12-03T01:00:00Z"}))
    run_worker(line_app)
    create, add = fake_line.uploads
    assert (create.method, add.method) == ("POST", "PUT")
    created = CreateAudienceGroupRequest.from_json(create.body.decode())
    added = AddAudienceToAudienceGroupRequest.from_json(add.body.decode())
    assert created.is_ifa_audience is False and len(created.audiences) == 10_000
    assert len(added.audiences) == 50
    audience_id = added.audience_group_id
    uploaded = {a.id for a in created.audiences} | {a.id for a in added.audiences}
    assert uploaded == _user_ids(north)  # the segment, and no one else
    [request] = fake_line.narrowcasts
    sent = NarrowcastRequest.from_json(request.body.decode())
    assert isinstance(sent.recipient, AudienceRecipient)
    assert sent.recipient.audience_group_id == audience_id
    assert [m.text for m in sent.messages] == [form["text"]]
    assert request.headers["X-Line-Retry-Key"]
    assert _statuses() == [OutboxStatus.DELIVERED, OutboxStatus.PENDING]
    assert db.session.scalar(sa.select(LineNotice.sent_count)) == 0

    _due_now()
    run_worker(line_app)
    assert len(fake_line.calls(PROGRESS)) == 2
    assert _statuses() == [OutboxStatus.DELIVERED, OutboxStatus.DELIVERED]
    notice = db.session.scalar(sa.select(LineNotice))
    assert (notice.recipient_count, notice.batch_count, notice.sent_count) == (10_050, 1, 10_050)
    assert fake_line.deleted_audiences == [audience_id]  # the audience is not kept
    assert fake_line.multicasts == []
    # Outbox rows name no one: no LINE user id in them.
    assert all("U0" not in str(m.headers) for m in db.session.scalars(sa.select(OutboxMessage)))
    page = line_client.get("/staff/line/notices").get_data(as_text=True)
    assert "今月の送信数：<strong>11,284通</strong>" in page


def _queue(line_app, text: str = "お知らせ"):
    from channels.line import notices

    supervisor = Actor(new_staff("supervisor"), "127.0.0.1")
    notice = notices.queue_notice(supervisor, text, notices.Segment("consumer"), quota=None)
    db.session.commit()
    return notice.id


def _opt_out(contact_ids: list[int]) -> None:
    db.session.execute(
        sa.delete(LineSubscription).where(LineSubscription.contact_id.in_(contact_ids))
    )
    db.session.commit()


def test_an_opt_out_before_the_upload_is_honoured_at_once(line_client, line_app, fake_line):
    from linebot.v3.audience import CreateAudienceGroupRequest

    override_settings(line_app, LINE_NARROWCAST_THRESHOLD=50)
    ids = _contacts(60, district=None)
    _queue(line_app)
    # Queued; before the worker: five opt out with a tap, one blocks the account.
    _opt_out(ids[:5])
    db.session.execute(
        sa.update(LineContact).where(LineContact.id == ids[5]).values(following=False)
    )
    db.session.commit()
    run_worker(line_app)
    [create] = fake_line.uploads
    uploaded = {a.id for a in CreateAudienceGroupRequest.from_json(create.body.decode()).audiences}
    assert uploaded == _user_ids(ids[6:])
    assert not uploaded & _user_ids(ids[:6])
    assert db.session.scalar(sa.select(LineNotice.sent_count)) == 54

    # So many opt out that LINE would refuse the audience (under 50): one multicast instead.
    from linebot.v3.messaging import MulticastRequest

    _opt_out(ids[6:])
    again = _contacts(55, district=None)
    _queue(line_app, "2通目")
    _opt_out(again[:10])
    run_worker(line_app)
    assert len(fake_line.uploads) == 1  # no second audience
    [multicast] = fake_line.multicasts
    assert set(MulticastRequest.from_json(multicast.body.decode()).to) == _user_ids(again[10:])


def test_a_narrowcast_refused_for_now_is_retried_without_a_second_upload(
    line_client, line_app, fake_line
):
    override_settings(line_app, LINE_NARROWCAST_THRESHOLD=50)
    _contacts(80, district=None)
    _queue(line_app)
    fake_line.script("/v2/bot/message/narrowcast", (500, {"message": "busy"}))
    run_worker(line_app)
    assert _statuses() == [OutboxStatus.PENDING]
    message = db.session.scalar(sa.select(OutboxMessage))
    assert "LINEが一時的に受け付けませんでした（500）" in message.last_error
    assert message.headers["uploaded"] is True  # how far it got, kept on the row
    _due_now()
    run_worker(line_app)
    assert len(fake_line.uploads) == 1  # the audience uploaded once
    first, second = fake_line.narrowcasts
    assert first.headers["X-Line-Retry-Key"] == second.headers["X-Line-Retry-Key"]
    assert _statuses() == [OutboxStatus.DELIVERED, OutboxStatus.DELIVERED]
    assert db.session.scalar(sa.select(LineNotice.sent_count)) == 80

    # A narrowcast LINE reports as failed: the progress row fails with LINE's reason.
    _queue(line_app, "2通目")
    fake_line.script(
        PROGRESS,
        (200, {"phase": "failed", "failedDescription": "internal error", "errorCode": 1,
               "acceptedTime": "2026-12-03T01:00:00Z"}),
    )  # fmt: skip
    run_worker(line_app)
    failed = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    )
    assert "LINEが送信できませんでした（failed：internal error）" in failed.last_error


def test_the_threshold_must_be_an_audience_line_accepts(app_factory):
    import pytest

    from consult.settings import ConfigError

    with pytest.raises(ConfigError, match="LINE_NARROWCAST_THRESHOLD"):
        app_factory(LINE_NARROWCAST_THRESHOLD=10)
