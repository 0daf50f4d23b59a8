"""Normalisation, citizen matching and the outbox."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    Channel,
    EntryKind,
    OutboxMessage,
    OutboxStatus,
    TimelineEntry,
)
from consult.services import citizens, outbox
from consult.services.actor import Actor
from consult.services.normalize import name_key, normalize_email, normalize_phone
from consult.timeutil import utcnow
from tests.conftest import install_channel

# --- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("０８７－８３９－２１１１", "0878392111"),
        ("087(839)2111", "0878392111"),
        ("０８７（８３９）２１１１", "0878392111"),
        ("+81 87 839 2111", "0878392111"),
        ("+81-90-1234-5678", "09012345678"),
        ("090-1234-5678", "09012345678"),
        (" 090 1234 5678 ", "09012345678"),
    ],
)
def test_normalize_phone_folds_what_people_type(typed, expected):
    assert normalize_phone(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["", None, "12345", "087-839-211", "0878-39-21111-1", "abc-defg-hijk", "8783921110", "+1 415"],
)
def test_normalize_phone_rejects_what_is_not_a_phone_number(typed):
    assert normalize_phone(typed) is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Ｔａｒｏ．Ｙａｍａｄａ＠Ｅｘａｍｐｌｅ．ＪＰ", "taro.yamada@example.jp"),
        ("  Info@City.Takamatsu.LG.JP ", "info@city.takamatsu.lg.jp"),
        ("ｈａｎａｋｏ＋ｓｏｕｄａｎ＠ｍａｉｌ．ｊｐ", "hanako+soudan@mail.jp"),
    ],
)
def test_normalize_email_folds_width_and_case(typed, expected):
    assert normalize_email(typed) == expected


@pytest.mark.parametrize("typed", ["", None, "taro@", "@example.jp", "taro example.jp", "a@b"])
def test_normalize_email_rejects_invalid(typed):
    assert normalize_email(typed) is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ヤマダ　タロウ", "やまだたろう"),
        ("やまだ たろう", "やまだたろう"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "やまだたろう"),
        ("山田　太郎", "山田太郎"),
        ("Yamada Taro", "yamadataro"),
        ("ヤマダ・タロウ", "やまだたろう"),
    ],
)
def test_name_key_folds_kana_width_and_spaces(typed, expected):
    assert name_key(typed) == expected


def test_name_key_of_nothing_is_none():
    assert name_key(None) is None
    assert name_key("   　") is None


# --- citizen matching ------------------------------------------------------------------------


@pytest.fixture
def actor(make_staff):
    return Actor(make_staff("consultant"), "127.0.0.1")


@pytest.fixture
def yamada(app, actor):
    citizen = citizens.create_citizen(
        actor,
        citizens.CitizenInput(name="山田 太郎", kana="ヤマダ タロウ", phone="087-839-2111"),
    )
    citizens.create_citizen(
        actor,
        citizens.CitizenInput(name="佐藤 花子", kana="さとう はなこ", phone="090-1111-2222"),
    )
    db.session.commit()
    return citizen


@pytest.mark.parametrize(
    "typed", ["０８７－８３９－２１１１", "087(839)2111", "+81 87 839 2111", "0878392111"]
)
def test_find_matches_by_phone_typed_differently(app, actor, yamada, make_ticket, typed):
    ticket = make_ticket(actor=actor, citizen=yamada)
    matches = citizens.find_matches(actor, phone=typed)
    assert [m.citizen.id for m in matches] == [yamada.id]
    assert matches[0].reason == "電話番号が一致"
    assert [t.number for t in matches[0].tickets] == [ticket.number]


@pytest.mark.parametrize("typed", ["やまだ", "ヤマダ", "ﾔﾏﾀﾞ", "やまだ　た", "山田"])
def test_find_matches_by_name_or_kana_prefix(app, actor, yamada, typed):
    matches = citizens.find_matches(actor, name=typed)
    assert [m.citizen.id for m in matches] == [yamada.id]
    assert matches[0].reason == "氏名の一部が一致"  # the start of 山田 太郎: a weak candidate
    assert not matches[0].strong


def test_find_matches_ignores_one_letter_and_unknown(app, actor, yamada):
    assert citizens.find_matches(actor, name="や") == []
    assert citizens.find_matches(actor, name="たなか") == []
    assert citizens.find_matches(actor, phone="087-000-0000") == []


# --- outbox ----------------------------------------------------------------------------------


@pytest.fixture
def deliverers(app):
    """Give the test app channels of its own (its registry goes with it)."""
    return lambda name, deliver: install_channel(app, name, deliver)


def _message(id_: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, id_)


def test_run_once_delivers_through_the_registered_deliverer(app, deliverers):
    sent = []
    deliverers("test-ok", lambda message: sent.append((message.recipient, message.body)))
    message = outbox.enqueue(channel="test-ok", recipient="taro@example.jp", body="ご案内")
    db.session.commit()

    report = outbox.run_once()

    assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
    assert sent == [("taro@example.jp", "ご案内")]
    stored = _message(message.id)
    assert stored.status == OutboxStatus.DELIVERED
    assert stored.attempts == 1 and stored.delivered_at is not None
    assert stored.claimed_by is None
    assert outbox.run_once().delivered == 0  # nothing sent twice


def test_temporary_failure_is_retried_later_with_backoff(app, deliverers):
    def flaky(message):
        raise outbox.TemporaryFailure("503 Service Unavailable")

    deliverers("test-flaky", flaky)
    message = outbox.enqueue(channel="test-flaky", recipient="x@example.jp", body="本文")
    db.session.commit()
    before = utcnow()

    report = outbox.run_once()

    after = utcnow()
    assert (report.delivered, report.retried, report.failed) == (0, 1, 0)
    stored = _message(message.id)
    assert stored.status == OutboxStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_error == "503 Service Unavailable"
    assert before + timedelta(seconds=30) <= stored.next_attempt_at <= after + timedelta(seconds=30)
    assert outbox.run_once().retried == 0  # not due yet


def test_permanent_failure_fails_and_writes_the_timeline(app, deliverers, make_ticket):
    def refuse(message):
        raise outbox.PermanentFailure("宛先のアドレスが存在しません")

    deliverers("test-refuse", refuse)
    ticket = make_ticket(channel=Channel.EMAIL, subject="証明書の郵送請求")
    message = outbox.enqueue(
        channel="test-refuse", recipient="nobody@example.jp", body="回答", ticket=ticket
    )
    db.session.commit()

    report = outbox.run_once()

    assert (report.delivered, report.retried, report.failed) == (0, 0, 1)
    stored = _message(message.id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.attempts == 1
    assert stored.last_error == "宛先のアドレスが存在しません"
    entries = db.session.scalars(
        sa.select(TimelineEntry).where(
            TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == EntryKind.DELIVERY
        )
    ).all()
    assert len(entries) == 1
    assert "宛先のアドレスが存在しません" in entries[0].body
    assert entries[0].data == {"outbox_id": message.id, "status": "failed"}


def test_a_crashing_deliverer_does_not_stop_the_others(app, deliverers):
    sent = []

    def crash(message):
        raise RuntimeError("bug in the channel")

    deliverers("test-crash", crash)
    deliverers("test-ok", lambda message: sent.append(message.recipient))
    first = outbox.enqueue(channel="test-ok", recipient="a@example.jp", body="1")
    crashing = outbox.enqueue(channel="test-crash", recipient="b@example.jp", body="2")
    last = outbox.enqueue(channel="test-ok", recipient="c@example.jp", body="3")
    db.session.commit()

    report = outbox.run_once()

    assert (report.delivered, report.retried, report.failed) == (2, 1, 0)
    assert sorted(sent) == ["a@example.jp", "c@example.jp"]
    assert _message(first.id).status == OutboxStatus.DELIVERED
    assert _message(last.id).status == OutboxStatus.DELIVERED
    crashed = _message(crashing.id)
    assert crashed.status == OutboxStatus.PENDING
    assert crashed.attempts == 1
    assert crashed.last_error == "RuntimeError"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_claims_never_take_the_same_row(app):
    messages = [
        outbox.enqueue(channel="test-claim", recipient=f"r{n}@example.jp", body="x")
        for n in range(60)
    ]
    db.session.commit()
    ids = [m.id for m in messages]
    db.session.remove()
    barrier = threading.Barrier(2)
    claimed: dict[str, list[int]] = {"w1": [], "w2": []}
    errors = []

    def work(name):
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                while True:
                    got = outbox.claim_due(name, 7)
                    if not got:
                        break
                    claimed[name].extend(got)
                db.session.remove()
        except Exception as exc:  # reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert set(claimed["w1"]).isdisjoint(claimed["w2"])
    assert sorted(claimed["w1"] + claimed["w2"]) == sorted(ids)
    rows = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.claimed_by)
    ).all()
    for row in rows:
        assert row.status == OutboxStatus.SENDING
        assert row.claimed_by == ("w1" if row.id in claimed["w1"] else "w2")
