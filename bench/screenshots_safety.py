"""Screenshots of the safety alert and the supervisor's dashboard, in Debian's Chromium.

    .venv/bin/python bench/screenshots_safety.py [--out docs/screenshots]

Uses the demo centre (bench/screenshots.py builds it): a consultant (yamada) presses the help
button at the counter; the support room's page (ito) shows the alert and answers 向かいます; the
consultant's page shows who is coming; the supervisor (tanaka) opens the dashboard.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from screenshots import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, build_app, free_port, shoot  # noqa: E402

from consult import demo  # noqa: E402


def log_in(browser, base: str, login: str):
    page = browser.new_context(locale="ja-JP", viewport=VIEWPORT).new_page()
    page.goto(f"{base}/login")
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_role("button", name="ログアウト")).to_be_visible()
    return page


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-safety-"))
    server = None
    try:
        app = build_app(tmp)
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
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
        if server is not None:
            server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    run(parser.parse_args().out)
