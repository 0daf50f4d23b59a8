"""Bad input through the web: a Japanese message, an error status, and nothing changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from channels.counter.models import CounterVisit
from channels.phone.models import PhoneCall
from consult.extensions import db
from consult.models import (
    Channel,
    Citizen,
    CitizenEmail,
    CitizenPhone,
    EntryKind,
    Ticket,
    TimelineEntry,
)
from consult.services import tickets
from consult.services.actor import Actor
from consult.timeutil import TOKYO, utcnow

TOO_LONG = "あ" * 10_001
COUNTED = (Ticket, TimelineEntry, Citizen, CitizenPhone, CitizenEmail, CounterVisit, PhoneCall)


def snapshot() -> dict:
    db.session.expire_all()
    counts = {
        model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in COUNTED
    }
    rows = db.session.execute(
        sa.select(
            Ticket.number,
            Ticket.subject,
            Ticket.status,
            Ticket.category_id,
            Ticket.assignee_id,
            Ticket.citizen_id,
            Ticket.priority,
        ).order_by(Ticket.id)
    ).all()
    return {"counts": counts, "tickets": [tuple(row) for row in rows]}


@pytest.fixture
def consultant(login_as):
    return login_as("consultant")


@pytest.fixture
def ticket(app, consultant, make_ticket, make_category):
    category = make_category(name="行政手続き")
    return make_ticket(
        actor=Actor(consultant, "127.0.0.1"),
        channel=Channel.PHONE,
        subject="住民票の写しについて",
        category_id=category.id,
        first_note="最初のメモ",
    )


def _refused(response, message: str) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html[:500]
    assert message in html
    return html


def test_over_long_note_is_refused(client, ticket):
    before = snapshot()
    response = client.post(f"/tickets/{ticket.number}/note", data={"body": TOO_LONG})
    _refused(response, "メモは10,000文字以内で入力してください。")
    assert snapshot() == before


def test_over_long_subject_is_refused(client, ticket):
    before = snapshot()
    response = client.post(
        f"/tickets/{ticket.number}/details",
        data={"subject": TOO_LONG, "category_id": str(ticket.category_id), "priority": "normal"},
    )
    _refused(response, "件名は200文字以内で入力してください。")
    assert snapshot() == before


def test_unknown_category_is_refused(client, ticket):
    before = snapshot()
    response = client.post(
        f"/tickets/{ticket.number}/details",
        data={"subject": "新しい件名", "category_id": "999999", "priority": "normal"},
    )
    _refused(response, "分類の選択肢から選んでください。")
    assert snapshot() == before


def test_unknown_priority_is_refused(client, ticket):
    before = snapshot()
    response = client.post(
        f"/tickets/{ticket.number}/details",
        data={"subject": "新しい件名", "category_id": "", "priority": "whenever"},
    )
    _refused(response, "優先度の選択肢から選んでください。")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "山田 太郎", "phone": "12345"}, "電話番号の形式が正しくありません。"),
        ({"name": "山田 太郎", "email": "taro@"}, "メールアドレスの形式が正しくありません。"),
        (
            {"name": "山田 太郎", "email": "taro example.jp"},
            "メールアドレスの形式が正しくありません。",
        ),
        ({"name": "あ" * 81}, "氏名は80文字以内で入力してください。"),
    ],
)
def test_invalid_citizen_details_are_refused(client, ticket, fields, message):
    before = snapshot()
    response = client.post(f"/tickets/{ticket.number}/citizen", data=fields)
    _refused(response, message)
    assert snapshot() == before


def test_valid_citizen_details_are_saved(client, ticket):
    response = client.post(
        f"/tickets/{ticket.number}/citizen",
        data={"name": "山田 太郎", "kana": "ヤマダ タロウ", "phone": "０８７－８３９－２１１１"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    citizen = db.session.get(Ticket, ticket.id).citizen
    assert citizen.name == "山田 太郎"
    assert [p.number for p in citizen.phones] == ["0878392111"]


@pytest.fixture
def closed_ticket(app, consultant, ticket, make_staff):
    tickets.close(Actor(consultant, "127.0.0.1"), ticket, "案内して完了")
    db.session.commit()
    return ticket


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("note", {"body": "完了後の追記"}),
        ("assign", "CONSULTANT"),
        ("details", {"subject": "件名を変える", "category_id": "", "priority": "high"}),
        ("citizen", {"name": "山田 太郎", "phone": "090-1234-5678"}),
        ("status", {"status": "in_progress", "reason": "戻す"}),
    ],
)
def test_closed_ticket_is_not_changed(client, consultant, closed_ticket, action, data):
    if data == "CONSULTANT":
        data = {"assignee_id": str(consultant.id)}
    before = snapshot()
    response = client.post(f"/tickets/{closed_ticket.number}/{action}", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html[:500]
    assert (
        "完了した相談は変更できません。再開してから操作してください。" in html
        or "解決済みの相談を対応中に戻すには「再開」から理由を入力してください。" in html
    )
    assert snapshot() == before


# --- counter and phone -----------------------------------------------------------------------


def test_counter_reception_creates_ticket_and_reception_number(client, consultant, make_category):
    category = make_category(name="消費生活トラブル")
    before = snapshot()
    response = client.post(
        "/counter/new",
        data={
            "category_id": str(category.id),
            "room": "2",
            "name": "佐藤 花子",
            "kana": "さとう はなこ",
            "phone": "090-1234-5678",
            "first_note": "訪問販売の契約を解約したい。",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    after = snapshot()
    assert after["counts"]["ticket"] == before["counts"]["ticket"] + 1
    assert after["counts"]["counter_visit"] == before["counts"]["counter_visit"] + 1
    assert after["counts"]["citizen"] == before["counts"]["citizen"] + 1
    created = db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1))
    assert response.headers["Location"].endswith(f"/tickets/{created.number}")
    assert created.channel == Channel.COUNTER
    assert created.subject == "訪問販売の契約を解約したい。"
    assert created.category_id == category.id
    assert created.session_started_at is not None
    visit = db.session.scalar(sa.select(CounterVisit).where(CounterVisit.ticket_id == created.id))
    assert visit.reception_number == 1 and visit.room == 2
    assert [p.number for p in created.citizen.phones] == ["09012345678"]
    page = client.get(f"/tickets/{created.number}").get_data(as_text=True)
    assert "受付番号 1・相談室2" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"phone": "12345"}, "電話番号の形式が正しくありません。"),
        ({"category_id": "999999"}, "分類の選択肢から選んでください。"),
        ({"room": "9"}, "相談室の選択肢から選んでください。"),
        ({"first_note": TOO_LONG}, "最初のメモは10,000文字以内で入力してください。"),
        ({"first_note": ""}, "最初のメモを入力してください。"),
    ],
)
def test_counter_reception_refuses_bad_input(client, consultant, fields, message):
    data = {"room": "1", "name": "佐藤 花子", "first_note": "ご用件"}
    data.update(fields)
    before = snapshot()
    _refused(client.post("/counter/new", data=data), message)
    assert snapshot() == before


def _call(**fields):
    data = {
        "name": "田中 一郎",
        "phone": "087-839-2111",
        "duration_minutes": "12",
        "recording_announced": "y",
        "first_note": "粗大ごみの出し方について",
    }
    data.update(fields)
    return data


def test_phone_log_with_callback_but_no_due_date_creates_nothing(client, consultant):
    before = snapshot()
    response = client.post("/phone/new", data=_call(callback_needed="y"))
    _refused(response, "折り返しが必要な場合は、折り返しの期限を入力してください。")
    assert snapshot() == before


def test_phone_log_with_callback_in_the_past_creates_nothing(client, consultant):
    past = (utcnow() - timedelta(days=1)).astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")
    before = snapshot()
    response = client.post("/phone/new", data=_call(callback_needed="y", callback_due_at=past))
    _refused(response, "折り返しの期限が過去の日時になっています。")
    assert snapshot() == before


def test_phone_log_with_callback_creates_the_ticket(client, consultant):
    due = (utcnow() + timedelta(days=1)).astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")
    response = client.post("/phone/new", data=_call(callback_needed="y", callback_due_at=due))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    created = db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1))
    call = db.session.scalar(sa.select(PhoneCall).where(PhoneCall.ticket_id == created.id))
    assert created.channel == Channel.PHONE
    assert call.callback_needed and call.callback_due_at is not None
    assert created.duration_seconds == 12 * 60
    kinds = [e.kind for e in created.timeline]
    assert EntryKind.NOTE in kinds and EntryKind.SESSION in kinds
    page = client.get(f"/tickets/{created.number}")
    assert page.status_code == 200
    assert "録音のお知らせ" in page.get_data(as_text=True)
