"""A joint session in three browsers: the consultant sets it from the ticket page, the external
body answers through its link, the officer of a department on their handoff page; the
consultant's open page shows each answer without a reload."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from tests.e2e.conftest import _serve, keep_screenshot
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e

MEETING = "https://meet.city.example.lg.jp/madoguchi/{code}"


@pytest.fixture
def joint_server(app_factory):
    with _serve(app_factory, HANDOFF_JOINT_MEETING_URL=MEETING) as server:
        yield server


def _case(server) -> str:
    """A ticket with a 合同オンライン相談 handoff to an external body; its number."""
    from consult.models import Channel
    from consult.services import staff as staff_service
    from consult.services import tickets
    from consult.services.actor import SYSTEM
    from handoff import services
    from handoff.models import Response

    with server.app.app_context():
        body = staff_service.create_department(
            None,
            code="yorozu",
            name="よろず支援拠点",
            email="yorozu@pref.example.jp",
            is_external=True,
        )
        ticket = tickets.create_ticket(SYSTEM, channel=Channel.COUNTER, subject="事業と家計の相談")
        services.create(
            SYSTEM, ticket, [services.Request(body.id, "一緒に聞いてほしい。", Response.JOINT)]
        )
        db.session.commit()
        result = ticket.number
        db.session.remove()
    return result


def _link(server) -> str:
    import sqlalchemy as sa

    from consult.models import OutboxMessage

    with server.app.app_context():
        message = db.session.scalars(
            sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())
        ).first()
        line = next(line for line in message.body.splitlines() if "/x/handoff/" in line)
        db.session.remove()
    return line[line.index("/x/handoff/") :]


def _next_weekday():
    from consult.services import calendar
    from consult.timeutil import tokyo_today

    day = tokyo_today() + timedelta(days=1)
    while day.weekday() >= 5 or calendar.holiday_name(day):
        day += timedelta(days=1)
    return day


def test_the_consultant_sets_a_session_and_sees_the_answer_arrive(
    joint_server, new_page, console_watch
):
    consultant_login, password = joint_server.make_staff("consultant")
    number = _case(joint_server)
    with joint_server.app.app_context():
        day = _next_weekday()

    desk = new_page()
    log_in(desk, joint_server.url, consultant_login, password)
    desk.goto(f"{joint_server.url}/tickets/{number}")
    panel = desk.locator("#handoffs")
    panel.get_by_text("合同相談の日時を設定").click()
    panel.get_by_label("日時").fill(f"{day.isoformat()}T14:00")
    panel.get_by_label("所要時間").select_option(label="60分")
    panel.get_by_label("方法").select_option(label="オンライン（ビデオ会議）")
    panel.get_by_role("button", name="日時を決めて案内する").click()
    expect(desk.locator(".notice--success")).to_contain_text("合同相談の案内")
    expect(panel.locator(".joint-session")).to_contain_text("14:00〜15:00")
    expect(panel.locator(".joint-session")).to_contain_text("回答待ち")

    # The external body opens its link in its own browser and asks for another time.
    body = new_page()
    body.goto(joint_server.url + _link(joint_server))
    expect(body.get_by_role("heading", name="合同相談のご案内")).to_be_visible()
    expect(body.get_by_role("link", name="カレンダーに追加（.ics）")).to_be_visible()
    body.get_by_label("お名前").fill("よろず 次郎")
    # Nothing to go on: a Japanese message next to the field, what was typed kept (the page's
    # 422 answer is what the browser reports).
    console_watch.expect(r"status of 422 .*/x/handoff/")
    body.get_by_role("button", name="別の日時を希望する").click()
    expect(body.locator(".notice--error, .field__error").first).to_contain_text("希望の日時")
    expect(body.get_by_label("お名前")).to_have_value("よろず 次郎")
    body.get_by_label("別の日時のご希望").fill("翌週の火曜日の午後なら伺えます")
    body.get_by_role("button", name="別の日時を希望する").click()
    expect(body.locator(".notice--success")).to_contain_text("お伝えしました")
    keep_screenshot(body, "joint-session-external.png")

    # The consultant's page, untouched, shows the answer.
    expect(panel.locator(".joint-session")).to_contain_text("別の日時を希望", timeout=5_000)
    expect(panel.locator(".joint-session")).to_contain_text("翌週の火曜日の午後なら伺えます")
    keep_screenshot(desk, "joint-session-desk.png")
