"""The written answer to a request to the city, in a real browser: refused, it comes back on
the ticket page with the message next to it and every character typed still there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import keep_screenshot
from tests.e2e.test_desk import log_in, receive_walk_in

pytestmark = pytest.mark.e2e


def test_a_refused_answer_keeps_the_typed_text(live_server, page, console_watch):
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("道路・公園")
    log_in(page, live_server.url, login, password)
    receive_walk_in(page, category, 1, "公園の遊具が壊れている")
    panel = page.locator("#voice")
    panel.locator("select").select_option(label="市への要望")
    panel.get_by_role("button", name="要望・手紙として登録").click()
    expect(panel).to_contain_text("回答期限")

    # Past the limit (the browser's maxlength, which a pasted text or an older browser may not
    # apply, taken away): the server refuses it.
    console_watch.expect("422.*request/answer")
    typed = "遊具の修繕を依頼しました。" + "あ" * 10_000
    answer = panel.locator("textarea")
    answer.evaluate("e => e.removeAttribute('maxlength')")
    answer.fill(typed)
    panel.get_by_role("button", name="回答を記録する").click()
    expect(panel.locator(".field__error")).to_contain_text("回答は10,000文字以内で入力してください")
    assert panel.locator("textarea").input_value() == typed
    expect(panel).to_contain_text("未回答")
    panel.scroll_into_view_if_needed()
    keep_screenshot(page, "voice-input-refused.png")
