"""Screenshots of one citizen, one record (issue 16), from the demo centre in Chromium.

    .venv/bin/python bench/screenshots_citizens.py [--out docs/screenshots]

The counter asking "this person or a new one" (池田 和子 typed another way, not chosen), the
citizen page with a duplicate and the supervisor's merge, its confirmation, the ticket page
after a duplicate email case was merged into the phone case (both timelines, 関連する相談),
and the administrator's merge records with the undo confirmation.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.screenshots import build_app, shoot  # noqa: E402
from consult import demo  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.models import Channel  # noqa: E402
from consult.services import citizens, merge, tickets  # noqa: E402
from consult.services.actor import SYSTEM  # noqa: E402


def prepare(app) -> dict:
    """池田 和子 twice (the duplicate came in by email), a phone case and its email twin."""
    with app.app_context():
        kept = citizens.create_citizen(
            SYSTEM,
            citizens.CitizenInput(
                name="池田 和子",
                kana="いけだ かずこ",
                phone="090-2681-0001",
                birth_date="1948-04-13",
            ),
        )
        twin = citizens.create_citizen(
            SYSTEM,
            citizens.CitizenInput(name="池田 和子", email="kazuko.ikeda@example.jp"),
        )
        by_phone = tickets.create_ticket(
            SYSTEM,
            channel=Channel.PHONE,
            subject="介護保険の認定結果について",
            citizen=kept,
            first_note="認定結果の通知が届いたが、内容がわからないとのこと。",
        )
        by_email = tickets.create_ticket(
            SYSTEM,
            channel=Channel.EMAIL,
            subject="認定結果の通知について（メール）",
            citizen=twin,
            first_note="電話でお話しした件、通知書の写真を送ります。",
        )
        other = tickets.create_ticket(
            SYSTEM,
            channel=Channel.COUNTER,
            subject="住宅改修の補助について",
            citizen=kept,
            first_note="手すりの取り付けを考えている。",
        )
        db.session.commit()
        return {
            "kept": kept.id,
            "twin": twin.id,
            "phone": by_phone.number,
            "email": by_email.number,
            "other": other.number,
        }


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-citizens-"))
    try:
        app = build_app(tmp)
        ids = prepare(app)
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            context = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT)
            page = context.new_page()
            common.browser_sign_in(page, base, "tanaka", demo.DEMO_PASSWORD)  # supervisor
            page.goto(f"{base}/counter/new")
            page.get_by_role("textbox", name="氏名", exact=True).fill("池田　和子")
            page.get_by_role("textbox", name="ふりがな", exact=True).fill("イケダ カズコ")
            page.get_by_role("textbox", name="電話番号").fill("090 2681 0001")
            page.get_by_label("最初のメモ（ご用件）").fill("介護認定の結果について、続きの相談。")
            page.get_by_role("button", name="受け付けて受付番号を発行").click()
            expect(page.locator("#citizen-choice")).to_be_visible()
            page.locator("#citizen-choice").scroll_into_view_if_needed()
            shoot(page, out, "citizen-choice-counter")
            page.set_viewport_size({"width": 1366, "height": 1400})
            page.goto(f"{base}/counter/new")
            page.get_by_role("textbox", name="氏名", exact=True).fill("池田　和子")
            page.get_by_role("textbox", name="電話番号").fill("090 2681 0001")
            page.get_by_label("最初のメモ（ご用件）").fill("介護認定の結果について、続きの相談。")
            page.get_by_role("button", name="受け付けて受付番号を発行").click()
            expect(page.locator("#citizen-choice")).to_be_visible()
            shoot(page, out, "citizen-choice-counter-full")
            page.set_viewport_size(common.VIEWPORT)

            page.goto(f"{base}/citizens/{ids['kept']}")
            page.get_by_label(re.compile("統合する相談者の番号")).fill(str(ids["twin"]))
            page.get_by_label(re.compile("統合の理由")).fill("メールで届いた方と同一人物")
            page.locator("#merge-heading").scroll_into_view_if_needed()
            shoot(page, out, "citizen-page-merge")
            page.get_by_role("button", name="確認へ進む").click()
            expect(page.get_by_role("heading", name="相談者の統合の確認")).to_be_visible()
            shoot(page, out, "citizen-merge-confirm")
            page.get_by_role("button", name="統合する").click()
            expect(page.locator(".flashes")).to_contain_text("統合しました")

            page.goto(f"{base}/tickets/{ids['email']}")
            page.get_by_text("この相談を別の相談に統合する").click()
            page.get_by_label(re.compile("統合先の相談番号")).fill(ids["phone"])
            page.get_by_role("button", name="確認へ進む").click()
            expect(page.get_by_role("heading", name="相談の統合の確認")).to_be_visible()
            shoot(page, out, "ticket-merge-confirm")
            page.get_by_role("button", name="統合する").click()
            page.get_by_label("関連する相談の相談番号").fill(ids["other"])
            page.get_by_role("button", name="関連付ける").click()
            expect(page.locator("#related")).to_contain_text(ids["other"])
            page.goto(f"{base}/tickets/{ids['phone']}")
            page.screenshot(path=str(out / "ticket-merged-and-related.png"), full_page=True)
            page.goto(f"{base}/tickets/{ids['email']}")  # the old number: to the survivor
            expect(page).to_have_url(re.compile(re.escape(ids["phone"])))

            admin = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
            common.browser_sign_in(admin, base, "admin", demo.DEMO_PASSWORD)
            admin.goto(f"{base}/admin/merges")
            shoot(admin, out, "admin-merges")
            admin.get_by_role("link", name=re.compile("取り消す")).first.click()
            expect(admin.get_by_role("button", name="統合を取り消す")).to_be_visible()
            shoot(admin, out, "admin-merge-undo")
            browser.close()
        with app.app_context():
            assert len(merge.list_records()) == 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    common.screenshots_main(run)
