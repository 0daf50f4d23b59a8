"""Screenshots of the desk for the docs, taken from the demo centre in Debian's Chromium.

    .venv/bin/python bench/screenshots.py [--out docs/screenshots]

Builds a temporary SQLite database with the demo data (migrations, then consult.demo.seed),
serves the app on 127.0.0.1, logs in as the demo consultant (yamada) and goes through a walk-in
as a consultant would: the queue, the reception form with an earlier citizen matched by phone,
the ticket page after a note and a call, and the lobby display showing the called number.
Each page is saved as a 1366x768 PNG. Never downloads a browser: /usr/bin/chromium must exist.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import upgrade
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from consult import create_app, demo  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.models import Citizen, CitizenPhone, Ticket  # noqa: E402


def build_app(tmp: Path):
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'demo.db'}",
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": "screenshots-only-secret-key-1234567890abcdef",
            "ENV": "development",
            "PASSWORD_HASH_COST": "fast",
            "TOTP_REQUIRED": "none",
            "DISPLAY_REFRESH_SECONDS": 2,
        },
        instance_path=str(tmp / "instance"),
    )
    with app.app_context():
        upgrade()
        demo.seed(ticket_count=120)
        db.session.commit()
    return app


def known_phone(app) -> tuple[str, str]:
    """A demo citizen's phone number and name, one with several earlier tickets."""
    with app.app_context():
        row = db.session.execute(
            sa.select(CitizenPhone.number, Citizen.name)
            .join(Citizen, Citizen.id == CitizenPhone.citizen_id)
            .join(Ticket, Ticket.citizen_id == Citizen.id)
            .group_by(CitizenPhone.number, Citizen.name, Citizen.id)
            .order_by(sa.func.count(Ticket.id).desc(), Citizen.id)
            .limit(1)
        ).one()
        db.session.remove()
    return row.number, row.name


def shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_timeout(300)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"{path} {path.stat().st_size // 1024} KB")


def open_reception(page: Page) -> None:
    page.get_by_role("navigation", name="メインメニュー").get_by_role(
        "link", name="窓口受付"
    ).click()
    expect(page.get_by_role("heading", name="窓口受付", level=1)).to_be_visible()


def walk_in(page: Page, category: str, room: int, note: str) -> None:
    open_reception(page)
    page.get_by_label("分類").select_option(label=category)
    page.get_by_label("相談室").select_option(label=f"相談室{room}")
    page.get_by_label("最初のメモ（ご用件）").fill(note)
    page.get_by_role("button", name="受け付けて受付番号を発行").click()
    expect(page.locator(".visit-panel")).to_be_visible()


def run(out: Path) -> None:
    if not common.CHROMIUM.exists():
        raise SystemExit(f"{common.CHROMIUM} is missing: install Debian's 'chromium' package")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-"))
    try:
        app = build_app(tmp)
        phone, citizen_name = known_phone(app)
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            desk = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
            common.browser_sign_in(desk, base, "yamada", demo.DEMO_PASSWORD)

            # Two citizens already waiting, so the lobby shows a queue.
            walk_in(desk, "行政手続き", 1, "転入届の手続きについて")
            walk_in(desk, "行政手続き", 2, "マイナンバーカードの更新")

            desk.goto(f"{base}/tickets")
            expect(desk.locator("main")).to_be_visible()
            shoot(desk, out, "queue")

            # Reception: a known phone number brings up the citizen's earlier consultations.
            open_reception(desk)
            desk.get_by_label("分類").select_option(index=1)
            desk.get_by_label("相談室").select_option(label="相談室3")
            desk.get_by_label("最初のメモ（ご用件）").fill(
                "国民健康保険の保険料の減免について相談したい。\n退職して収入が減った。"
            )
            desk.get_by_role("textbox", name="電話番号").fill(phone)
            expect(desk.locator(".matches")).to_contain_text(citizen_name)
            shoot(desk, out, "reception")

            desk.get_by_role("button", name="この方として受け付ける").click()
            desk.get_by_role("button", name="受け付けて受付番号を発行").click()
            expect(desk.locator(".visit-panel")).to_be_visible()
            desk.get_by_label("メモ", exact=True).fill(
                "減免申請書と離職票の写しが必要なことを案内した。"
            )
            desk.get_by_role("button", name="メモを追加").click()
            desk.get_by_role("button", name="呼び出す").click()
            expect(desk.locator(".visit-panel")).to_contain_text("呼び出し中")
            desk.goto(re.sub(r"#.*$", "", desk.url))
            shoot(desk, out, "ticket")

            # Handoff: the officer of 国保・高齢者医療課 comes to the counter.
            desk.get_by_text("担当課に引き継ぐ").click()
            desk.get_by_label("引継ぎ先を絞り込む").fill("国保")
            desk.get_by_label("引継ぎ先（担当課・外部機関）").select_option(
                label="国保・高齢者医療課（健康福祉局）"
            )
            desk.get_by_label("担当課への伝達事項").fill(
                "退職による収入減で保険料の減免を希望。離職票の写しは持参済み。"
                "減免の可否と必要書類を窓口で説明してください。"
            )
            desk.get_by_role("button", name="引継ぎを依頼する").click()
            expect(desk.locator("#handoffs")).to_contain_text("依頼中")

            officer = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
            common.browser_sign_in(officer, base, "takahashi", demo.DEMO_PASSWORD)
            expect(officer.locator("main h1")).to_contain_text("引継ぎ一覧")
            shoot(officer, out, "handoff-inbox")
            officer.locator("main table a").first.click()
            officer.get_by_role("button", name="受け付ける").click()
            officer.get_by_label("到着までの時間（分）").fill("5")
            officer.get_by_role("button", name="窓口へ向かいます").click()
            expect(officer.locator(".flashes")).to_contain_text("向かっています")
            shoot(officer, out, "handoff-officer")
            expect(desk.locator("#handoffs")).to_contain_text("向かっています", timeout=5000)
            desk.locator("#handoffs").scroll_into_view_if_needed()
            shoot(desk, out, "handoff-ticket")

            display = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
            display.goto(f"{base}/display")
            expect(display.locator("#called .display__item")).to_have_count(1)
            shoot(display, out, "display")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    common.screenshots_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
