"""In Chromium: a consultant writes a consumer alert (the phone number in it is taken out), a
supervisor approves it, the consultant's open page hears of it live, citizens read it on /alerts
in Japanese and English, and the supervisor sends the LINE notice from the compose page after
seeing the recipients and the month's quota; the fake Messaging API receives the multicast."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from consult.extensions import db
from tests.channels.line.fake_line import SECRET, TOKEN, start_fake_line
from tests.e2e.conftest import _serve
from tests.e2e.test_desk import log_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def alerts_live(app_factory):
    # The Messaging API client takes seconds to import; the server runs in this process, so the
    # notices page (which asks LINE for the quota) does not pay for it under the test's clock.
    import linebot.v3.messaging  # noqa: F401

    fake, fake_server = start_fake_line()
    fake.quota_limit, fake.used = 500, 120
    try:
        with _serve(
            app_factory,
            LINE_CHANNEL_SECRET=SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
            LINE_API_HOST=fake.url,
        ) as server:
            yield server, fake
    finally:
        fake_server.shutdown()


def _opted_in(app, n: int) -> None:
    from channels.line.models import LineContact, LineSubscription
    from consult.timeutil import utcnow

    with app.app_context():
        now = utcnow()
        for i in range(n):
            contact = LineContact(user_id=f"U{i:032x}", following=True, created_at=now)
            db.session.add(contact)
            db.session.flush()
            db.session.add(
                LineSubscription(
                    contact_id=contact.id, topic="interest", value="consumer", consented_at=now
                )
            )
        db.session.commit()


def test_alert_written_approved_published_and_sent_on_line(alerts_live, new_page):
    live, fake = alerts_live
    _opted_in(live.app, 12)
    consultant, password = live.make_staff("consultant")
    supervisor, _ = live.make_staff("supervisor")

    desk = new_page()
    log_in(desk, live.url, consultant, password)
    desk.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="注意喚起"
    ).click()
    desk.get_by_role("link", name="注意喚起を作成").click()
    desk.get_by_label("件名", exact=True).fill("市役所職員を名乗る還付金詐欺")
    desk.get_by_label("手口", exact=True).fill(
        "市役所を名乗り、折り返しは090-1111-2222へと言う電話。"
    )
    desk.get_by_label("地域", exact=True).fill("市内全域")
    desk.get_by_label("犯人がよく使う言葉（1行に1つ）").fill("医療費の還付金があります\nATMへ")
    desk.get_by_label("対処法", exact=True).fill(
        "ATMで還付金は受け取れません。電話を切ってください。"
    )
    desk.get_by_label("英語の件名（英語ページ用・任意）").fill("Refund fraud by fake city staff")
    desk.get_by_role("button", name="保存").click()
    main = desk.locator("main")
    expect(main).to_contain_text("［電話番号］")
    expect(main).not_to_contain_text("090-1111-2222")
    desk.get_by_role("button", name="承認を依頼").click()
    expect(desk.get_by_text("承認を依頼しました。")).to_be_visible()
    desk.goto(f"{live.url}/today")  # left open: the approval arrives live

    boss = new_page()
    log_in(boss, live.url, supervisor, password)
    boss.goto(f"{live.url}/today")
    boss.get_by_role("link", name="市役所職員を名乗る還付金詐欺").click()
    boss.get_by_role("button", name="承認して公開").click()
    expect(boss.get_by_text("承認して公開しました。")).to_be_visible()
    expect(desk.locator("#consumer-alert-live")).to_contain_text(
        "新しい注意喚起が公開されました：市役所職員を名乗る還付金詐欺"
    )

    citizen = new_page()
    citizen.goto(f"{live.url}/alerts")
    expect(citizen.get_by_role("heading", name="消費生活・特殊詐欺の注意喚起")).to_be_visible()
    citizen.get_by_role("link", name="市役所職員を名乗る還付金詐欺").click()
    expect(citizen.locator("main")).to_contain_text("「医療費の還付金があります」")
    expect(citizen.locator("main")).not_to_contain_text("090-1111-2222")
    citizen.goto(f"{live.url}/alerts?lang=en")
    expect(citizen.get_by_role("heading", name="Consumer and fraud alerts")).to_be_visible()
    citizen.get_by_role("link", name="Refund fraud by fake city staff").click()
    expect(citizen.get_by_text("What to do")).to_be_visible()

    # The LINE notice prepared from the alert: recipients and quota, then one send.
    nav = boss.get_by_role("navigation", name="メインメニュー")
    nav.get_by_role("link", name="LINEお知らせ").click()
    expect(boss.locator("#line-quota")).to_contain_text(
        "今月の送信数：120通 ／ 上限 500通（残り 380通）"
    )
    boss.get_by_role("link", name="【注意喚起】市役所職員を名乗る還付金詐欺").click()
    boss.get_by_role("button", name="送信先を確認").click()
    expect(boss.locator("#notice-check")).to_contain_text("送信先：12人")
    expect(boss.locator("#notice-check")).to_contain_text("送信後の今月の残り：368通")
    boss.get_by_role("button", name="この内容で12人に送信する").click()
    expect(boss.get_by_text("お知らせを12人に送信します（1回に分けて送信）。")).to_be_visible()

    from consult.services import outbox

    with live.app.app_context():
        outbox.run_once()
        db.session.remove()
    [multicast] = fake.multicasts
    from linebot.v3.messaging import MulticastRequest

    sent = MulticastRequest.from_json(multicast.body.decode())
    assert len(sent.to) == 12
    assert sent.messages[0].text.startswith("【注意喚起】市役所職員を名乗る還付金詐欺")
    with live.app.app_context():
        from channels.line.models import LineNotice

        assert db.session.scalar(sa.select(LineNotice.sent_count)) == 12
