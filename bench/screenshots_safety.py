"""Screenshots of the safety alert and the supervisor's dashboard, in Debian's Chromium.

    .venv/bin/python bench/screenshots_safety.py [--out docs/screenshots]

Uses the demo centre (bench/screenshots.py builds it): a consultant (yamada) presses the help
button at the counter; the support room's page (ito) shows the alert and answers 向かいます; the
consultant's page shows who is coming; the supervisor (tanaka) opens the dashboard.
"""

from __future__ import annotations

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


def log_in(browser, base: str, login: str):
    page = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
    common.browser_sign_in(page, base, login, demo.DEMO_PASSWORD)
    return page


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-safety-"))
    try:
        app = build_app(tmp)
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            room = log_in(browser, base, "ito")
            desk = log_in(browser, base, "yamada")
            desk.goto(f"{base}/tickets")
            desk.locator(".queue-table__subject").first.click()
            desk.get_by_label("場所").select_option(label="相談室2")
            desk.keyboard.press("Alt+H")
            alert = room.locator("#alerts-live .alert-live__item")
            expect(alert).to_be_visible(timeout=3000)
            shoot(room, out, "safety-alert-support-room")
            alert.get_by_role("button", name="向かいます").click()
            expect(desk.locator("#alerts-live")).to_contain_text("向かいます", timeout=3000)
            shoot(desk, out, "safety-alert-consultant")
            boss = log_in(browser, base, "tanaka")
            boss.goto(f"{base}/reports")
            expect(boss.locator("svg.chart").first).to_be_visible()
            boss.set_viewport_size({"width": 1366, "height": 1400})
            shoot(boss, out, "reports-dashboard")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    common.screenshots_main(run)
