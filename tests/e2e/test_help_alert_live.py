"""The help alert of issue 15 in three real browsers (consultant, support room, supervisor).

A consultant in a counter visit in 相談室3 types a メモ and presses Alt+H: the memo stays, the
support room's open page shows 相談室3 without reload. No one answers: the alerts lane escalates
(the delay is a setting, 2 s here), the consultant reads 「未応答（エスカレーション済み）」 and the
supervisor's page shows it. The support room answers 向かいます: the consultant sees who is coming.
Then the supervisor's page with a long-session warning and the alert stacked: the menu stays
usable, items minimise into the tray (MADOGUCHI_TEST_SCREENSHOTS=docs/screenshots keeps the
screenshots the README shows).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consult.extensions import db
from consult.worker import Worker
from tests.e2e.conftest import _serve, keep_screenshot
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def alerts_server(app_factory):
    with _serve(app_factory, SAFETY_ALERT_ESCALATE_SECONDS=2) as server:
        worker = Worker(server.app, interval=0.3, lanes={"alerts"})
        worker.start()
        try:
            yield server
        finally:
            worker.stop.set()
            worker.join(timeout=10)


def _visit_in_room_3(server, login: str) -> str:
    from channels.counter import services as counter
    from consult.models import Staff
    from consult.services.actor import Actor

    with server.app.app_context():
        staff = db.session.scalar(db.select(Staff).where(Staff.login == login))
        actor = Actor(staff, "127.0.0.1")
        visit = counter.receive(
            actor, counter.WalkIn(category_id=None, room=1, first_note="来庁", anonymous=True)
        )
        counter.move(actor, visit.ticket, "serve", room=3)
        db.session.commit()
        number = visit.ticket.number
        db.session.remove()
    return number


def _long_session(server, number: str) -> None:
    from datetime import timedelta

    from consult.models import Ticket
    from consult.services import safety
    from consult.timeutil import utcnow

    with server.app.app_context():
        ticket = db.session.scalar(db.select(Ticket).where(Ticket.number == number))
        ticket.session_started_at = utcnow() - timedelta(minutes=31)
        db.session.flush()
        safety.check_long_sessions()
        db.session.commit()
        db.session.remove()


def test_help_alert_from_room_3_keeps_the_memo_escalates_and_reaches_everyone(
    alerts_server, new_page
):
    server = alerts_server
    consultant, password = server.make_staff("consultant", full_name="窓口 一郎")
    support, _ = server.make_staff("support", full_name="安心 守")
    supervisor, _ = server.make_staff("supervisor", full_name="責任 花子")
    number = _visit_in_room_3(server, consultant)
    desk, room, boss = new_page(), new_page(), new_page()
    log_in(room, server.url, support, password)
    log_in(boss, server.url, supervisor, password)
    log_in(desk, server.url, consultant, password)
    desk.goto(f"{server.url}/tickets/{number}")
    expect(desk.locator("#help-form")).to_contain_text("場所：相談室3（受付中）")

    memo = desk.get_by_label("メモ", exact=True)
    memo.fill("相談者が大声で要求を繰り返している。書きかけ")
    memo.focus()
    url_before = desk.url
    desk.keyboard.press("Alt+H")
    expect(desk.locator("#help-status")).to_contain_text(
        f"応援を要請しました：相談室3（受付中の相談 {number}）"
    )
    expect(memo).to_have_value("相談者が大声で要求を繰り返している。書きかけ")
    assert desk.url == url_before

    alert = room.locator("#alerts-live .alert-live__item")
    expect(alert).to_contain_text(f"応援要請：相談室3（受付中の相談 {number}）")
    expect(alert).to_contain_text("窓口 一郎")
    own = desk.locator("#alerts-live .alert-live__item")
    expect(own).to_contain_text("まだ誰も応答していません")

    # Nobody answers: the alerts lane escalates after the (2 s) delay.
    expect(own).to_contain_text("未応答（エスカレーション済み）")
    expect(own).to_contain_text("まだ誰も応答していません")
    boss_alert = boss.locator("#alerts-live .alert-live__item:not(.alert-live__item--long)")
    expect(boss_alert).to_contain_text("未応答（エスカレーション済み）")
    boss.wait_for_function("() => madoguchi.live.lastBeep && madoguchi.live.lastBeep.loud")

    alert.get_by_role("button", name="向かいます").click()
    expect(own).to_contain_text("向かっています：安心 守：向かいます")
    expect(own).not_to_contain_text("まだ誰も応答していません")
    expect(memo).to_have_value("相談者が大声で要求を繰り返している。書きかけ")
    # The memo being typed in is not under the help button or the tray: its first line, left to
    # right, is the textarea itself (checked in one go in the page, waiting for layout to settle).
    memo.blur()
    memo.focus()
    desk.wait_for_function(
        """() => {
            const memo = document.activeElement;
            if (!memo || memo.tagName !== "TEXTAREA") return false;
            const r = memo.getBoundingClientRect();
            return [r.left + 12, r.left + r.width / 2, r.right - 12].every(
                (x) => document.elementFromPoint(x, r.top + 14) === memo);
        }""",
        timeout=5_000,
    )
    keep_screenshot(desk, "safety-alert-consultant.png", full_page=False)

    # The supervisor's page: a long-session warning and the alert, stacked under the menu.
    _long_session(server, number)
    boss.set_viewport_size({"width": 1024, "height": 700})
    long_item = boss.locator("#alerts-live .alert-live__item--long")
    expect(long_item).to_contain_text(f"長時間対応：相談 {number} が30分を超えました")
    expect(boss.locator("#alerts-live .alert-live__item")).to_have_count(2)
    keep_screenshot(boss, "safety-alerts-stacked.png", full_page=False)
    links = boss.locator(".site-nav a")
    assert links.count() >= 3
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        # The element at the link's centre is the link itself: nothing covers the menu.
        covered = boss.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y); return e && e.closest('a') ?"
            " e.closest('a').textContent : (e ? e.className : null); }",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert covered == links.nth(i).text_content(), covered

    # Minimise both: the tray keeps them reachable, one click brings them back.
    for item in (long_item, boss_alert):
        item.get_by_role("button", name="最小化").click()
    expect(boss.locator("#alerts-live .alert-live__item")).to_have_count(0)
    tray = boss.locator("#alerts-tray button")
    expect(tray).to_contain_text("応援要請 1件・長時間対応 1件（最小化 2件：表示する）")
    keep_screenshot(boss, "safety-alerts-minimised.png", full_page=False)
    boss.goto(f"{server.url}/tickets/{number}")  # stays minimised on the next page
    expect(tray).to_contain_text("最小化 2件")
    tray.click()
    expect(boss.locator("#alerts-live .alert-live__item")).to_have_count(2)
    links.first.click()
    expect(boss).not_to_have_url(f"{server.url}/tickets/{number}")


def test_without_a_visit_the_place_chosen_on_the_device_is_remembered_and_named(
    live_server, new_page
):
    login, password = live_server.make_staff("consultant", full_name="窓口 二郎")
    support, _ = live_server.make_staff("support")
    desk, room = new_page(), new_page()
    log_in(room, live_server.url, support, password)
    log_in(desk, live_server.url, login, password)
    desk.goto(f"{live_server.url}/counter/new")
    desk.locator("#help-place").select_option(label="相談室2")
    desk.goto(f"{live_server.url}/")  # another page, same device: the choice is kept
    expect(desk.locator("#help-place")).to_have_value("room2")
    desk.get_by_role("button", name="応援要請").click()
    expect(desk.locator("#help-status")).to_contain_text(
        "応援を要請しました：相談室2（端末で選択）"
    )
    expect(room.locator("#alerts-live .alert-live__item")).to_contain_text(
        "応援要請：相談室2（端末で選択）"
    )
