"""Screenshots of online booking for the docs (Japanese and English), in Debian's Chromium.

    .venv/bin/python bench/screenshots_booking.py [--out docs/screenshots]

Same demo centre as bench/screenshots.py. A citizen chooses purpose and mode, a slot, sends the
form once with mistakes, then books; the staff day view shows that day's bookings. Saved as
docs/screenshots/booking-*.png (1366x768). Never downloads a browser.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.screenshots import build_app  # noqa: E402
from consult import demo  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.services.calendar import DayType, day_type  # noqa: E402
from consult.timeutil import TOKYO, tokyo_today  # noqa: E402

CALLERS = [
    ("counter", time(9, 0), "佐藤 美咲", "さとう みさき", "児童手当の申請に必要な書類を知りたい"),
    ("counter", time(10, 30), "鈴木 健一", "すずき けんいち", "相続した空き家の管理について"),
    ("phone", time(10, 30), "田中 翔", "たなか しょう", "国民年金の免除申請の方法"),
    ("video", time(13, 0), "伊藤 さくら", "いとう さくら", "転入時の手続きの順番を相談したい"),
    ("counter", time(14, 0), "渡辺 一郎", "わたなべ いちろう", "介護保険の認定申請について"),
]


def next_weekday(after_days: int = 8):
    day = tokyo_today() + timedelta(days=after_days)
    while day_type(day) is not DayType.WEEKDAY:
        day += timedelta(days=1)
    return day


def seed_bookings(app, day) -> None:
    from channels.booking import services
    from consult.services.actor import SYSTEM

    with app.app_context():
        for mode, at, name, kana, content in CALLERS:
            services.create_booking(
                SYSTEM,
                services.BookingInput(
                    mode=mode,
                    starts_at=datetime.combine(day, at, TOKYO),
                    name=name,
                    kana=kana,
                    content=content,
                    email="citizen@example.jp",
                    phone="090-1234-5678",
                ),
            )
        db.session.commit()
        db.session.remove()


def shoot(page: Page, out: Path, name: str, full_page: bool = False) -> None:
    page.wait_for_timeout(300)
    path = out / f"booking-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"{path} {path.stat().st_size // 1024} KB")


def citizen(browser, base: str, out: Path, lang: str) -> None:
    ja = lang == "ja"
    page = browser.new_context(
        locale="ja-JP" if ja else "en-GB", viewport=common.VIEWPORT
    ).new_page()
    page.goto(f"{base}/booking/?lang={lang}")
    page.get_by_label("相談の分類" if ja else "Subject").select_option(index=2)
    page.get_by_role("radio", name="窓口" if ja else "At the counter").check()
    shoot(page, out, f"{lang}-1-purpose-mode")
    page.get_by_role("button", name="空いている日時を見る" if ja else "See free times").click()
    page.get_by_role("link", name="次の週" if ja else "Next week").click()
    expect(page.locator(".slot-list").first).to_be_visible()
    shoot(page, out, f"{lang}-2-slots")
    page.locator(".slot-list a").nth(5).click()
    page.get_by_label(re.compile("^氏名" if ja else "^Name")).fill(
        "山田 花子" if ja else "Emma Brown"
    )
    page.get_by_label("メールアドレス" if ja else "Email address").fill(
        "hanako@" if ja else "emma@"
    )
    page.get_by_role("button", name="予約する" if ja else "Book").click()
    expect(page.locator(".field__error").first).to_be_visible()
    shoot(page, out, f"{lang}-3-details-error", full_page=True)
    page.get_by_label("ふりがな" if ja else "Reading of your name").fill(
        "やまだ はなこ" if ja else "えま ぶらうん"
    )
    page.get_by_label("メールアドレス" if ja else "Email address").fill(
        "hanako@example.jp" if ja else "emma@example.com"
    )
    page.get_by_label("相談内容" if ja else "What you would like to consult about").fill(
        "介護保険の申請について、必要な書類を知りたい" if ja else "Moving-in procedures"
    )
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="予約する" if ja else "Book").click()
    expect(page.locator(".booking-ref")).to_be_visible()
    shoot(page, out, f"{lang}-4-confirmation")
    page.context.close()


def run(out: Path) -> None:
    if not common.CHROMIUM.exists():
        raise SystemExit(f"{common.CHROMIUM} is missing: install Debian's 'chromium' package")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-"))
    try:
        app = build_app(tmp)
        day = next_weekday()
        seed_bookings(app, day)
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            citizen(browser, base, out, "ja")
            citizen(browser, base, out, "en")
            desk = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
            common.browser_sign_in(desk, base, "yamada", demo.DEMO_PASSWORD)
            desk.goto(f"{base}/booking/staff/day?date={day.isoformat()}")
            expect(desk.locator("main h1")).to_be_visible()
            shoot(desk, out, "staff-day")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    common.screenshots_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
