"""Choose or new at the counter, in Chromium (issue 16): a walk-in whose name and phone match a
registered citizen, submitted without choosing, comes back with the candidates and everything
typed; choosing her links the case to her record; choosing 新しい相談者 makes a new one."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from consult.extensions import db
from consult.models import Citizen
from tests.e2e.test_desk import log_in, ticket_number_of

pytestmark = pytest.mark.e2e


def _citizens(app) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Citizen))
        db.session.remove()
    return count


def _open_reception(page, category: str) -> None:
    page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="窓口受付"
    ).click()
    expect(page.get_by_role("heading", name="窓口受付", level=1)).to_be_visible()
    page.get_by_label("分類").select_option(label=category)


def test_counter_asks_this_person_or_a_new_one(live_server, page, console_watch):
    login, password = live_server.make_staff("consultant")
    category = live_server.make_category("福祉・介護")
    citizen_id, earlier = live_server.make_citizen_with_ticket(
        name="池田 和子", phone="090-2681-0001", subject="介護保険の申請について"
    )
    before = _citizens(live_server.app)
    console_watch.expect(r"status of 422 .*/counter/new")  # the form asked again, on purpose
    log_in(page, live_server.url, login, password)

    # Typed as the citizen says it, another spelling and phone format; no candidate clicked.
    _open_reception(page, category)
    page.get_by_role("textbox", name="氏名", exact=True).fill("池田　和子")
    page.get_by_role("textbox", name="ふりがな", exact=True).fill("イケダ カズコ")
    page.get_by_role("textbox", name="電話番号").fill("090 2681 0001")
    page.get_by_label("最初のメモ（ご用件）").fill("介護認定の結果が届いたので相談したい。")
    page.get_by_role("button", name="受け付けて受付番号を発行").click()

    choice = page.locator("#citizen-choice")
    expect(choice).to_be_visible()
    expect(
        page.locator(".flashes [role=alert]").filter(
            has_text="登録済みの相談者と一致する可能性があります。"
        )
    ).to_be_visible()
    expect(choice).to_contain_text("この方として受け付ける：池田 和子")
    expect(choice).to_contain_text("電話番号が一致")
    expect(choice.get_by_role("link", name=re.compile(re.escape(earlier)))).to_be_visible()
    # Nothing typed is lost, and nothing was created.
    expect(page.get_by_label("最初のメモ（ご用件）")).to_have_value(
        "介護認定の結果が届いたので相談したい。"
    )
    expect(page.get_by_role("textbox", name="氏名", exact=True)).to_have_value("池田　和子")
    assert _citizens(live_server.app) == before

    choice.get_by_label(re.compile("この方として受け付ける：池田 和子")).check()
    page.get_by_role("button", name="受け付けて受付番号を発行").click()
    expect(page).to_have_url(re.compile(r"/tickets/[^/]+$"))
    expect(page.locator(".visit-panel")).to_contain_text("受付番号")
    assert live_server.ticket(ticket_number_of(page))["citizen_id"] == citizen_id
    assert _citizens(live_server.app) == before

    # Another 池田 和子 with the same phone (a daughter-in-law sharing the line): a new person.
    _open_reception(page, category)
    page.get_by_role("textbox", name="氏名", exact=True).fill("池田 和子")
    page.get_by_role("textbox", name="電話番号").fill("09026810001")
    page.get_by_label("最初のメモ（ご用件）").fill("同居の義母とは別の相談です。")
    page.get_by_role("button", name="受け付けて受付番号を発行").click()
    expect(page.locator("#citizen-choice")).to_be_visible()
    page.locator("#citizen-choice").get_by_label(re.compile("新しい相談者として受け付ける")).check()
    page.get_by_role("button", name="受け付けて受付番号を発行").click()
    expect(page).to_have_url(re.compile(r"/tickets/[^/]+$"))
    new_citizen = live_server.ticket(ticket_number_of(page))["citizen_id"]
    assert new_citizen not in (None, citizen_id)
    assert _citizens(live_server.app) == before + 1
