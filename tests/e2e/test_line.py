"""In Chromium: a signed LINE message arrives, the consultant answers, fake LINE gets the push."""

from __future__ import annotations

import urllib.request

import pytest

from consult.worker import Worker
from tests.channels.line.conftest import body_of, text_event
from tests.channels.line.fake_line import SECRET, TOKEN, sign, start_fake_line
from tests.e2e.conftest import _serve
from tests.e2e.test_desk import log_in


@pytest.fixture
def line_live(app_factory):
    # The e2e server (tests/e2e/conftest.py): at the end it lets the requests still running
    # finish (a script the closed page was loading) before it stops.
    fake, fake_server = start_fake_line()
    settings = {
        "LINE_CHANNEL_SECRET": SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "LINE_API_HOST": fake.url,
    }
    with _serve(app_factory, **settings) as live:
        worker = Worker(live.app, interval=0.3)
        worker.start()
        try:
            yield live, fake
        finally:
            worker.stop.set()
            worker.join(timeout=10)
            fake_server.shutdown()


def test_line_message_answered_from_the_ticket_page(line_live, page):
    live, fake = line_live
    login, password = live.make_staff("consultant", display_name="まどぐち / Madoguchi")
    body = body_of(text_event("国民健康保険の手続きを教えてください"))
    request = urllib.request.Request(  # noqa: S310 (our own server on 127.0.0.1)
        f"{live.url}/channels/line/webhook",
        data=body.encode(),
        headers={"X-Line-Signature": sign(body), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    log_in(page, live.url, login, password)
    page.goto(f"{live.url}/tickets?channel=line")
    link = page.get_by_role("link", name="LINE：国民健康保険の手続きを教えてください")
    for _ in range(20):  # processed after the response or by the worker, within moments
        if link.count():
            break
        page.wait_for_timeout(250)
        page.reload()
    link.first.click()
    page.get_by_text("国民健康保険の手続きを教えてください", exact=True).first.wait_for()
    page.get_by_label("LINEで返信").fill("保険年金課の窓口（1階）でお手続きできます。")
    page.get_by_role("button", name="LINEで送信").click()
    page.get_by_text("送信待ちに入れました").wait_for()
    push = fake.wait_for(
        lambda: [p for p in fake.pushes if "保険年金課" in "".join(p.texts)], timeout=15
    )
    expected = "［まどぐち / Madoguchi］\n保険年金課の窓口（1階）でお手続きできます。"
    assert push[0].texts == [expected]
