"""Screenshots of a consultant's day: 折り返し in the queue and on the ticket, and the reminder.

    .venv/bin/python bench/screenshots_desk_day.py [--out /tmp/shots]

Uses the demo centre (bench/screenshots.py builds it): yamada has promised three callbacks
today (one overdue); the queue lists them by due time, the ticket page shows one with its
「折り返し済みにする」 button, and the worker's reminder appears on the open page. Last, the
ticket's A4 print view (as printed: print media, A4 width; also saved as a PDF).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.screenshots import build_app, shoot  # noqa: E402
from consult import demo  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.models import Staff, Ticket  # noqa: E402
from consult.services import callbacks  # noqa: E402
from consult.services.actor import Actor  # noqa: E402
from consult.timeutil import utcnow  # noqa: E402


def promise_callbacks(app) -> str:
    with app.app_context():
        yamada = db.session.scalar(sa.select(Staff).where(Staff.login == "yamada"))
        actor = Actor(yamada, "127.0.0.1")
        open_tickets = db.session.scalars(
            sa.select(Ticket).where(Ticket.is_open.is_(True)).order_by(Ticket.id).limit(3)
        ).all()
        now = utcnow()
        for ticket, minutes in zip(open_tickets, (-25, 8, 95), strict=True):
            ticket.assignee = yamada
            callbacks.schedule(actor, ticket, now + timedelta(minutes=minutes))
        db.session.commit()
        return open_tickets[0].number


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-desk-day-"))
    try:
        app = build_app(tmp)
        number = promise_callbacks(app)
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            page = browser.new_context(locale="ja-JP", viewport=common.VIEWPORT).new_page()
            common.browser_sign_in(page, base, "yamada", demo.DEMO_PASSWORD)
            page.goto(f"{base}/tickets?mine=1")
            expect(page.locator(".callbacks-table tr.is-overdue")).to_have_count(1)
            shoot(page, out, "queue-callbacks")
            page.goto(f"{base}/tickets/{number}")
            expect(page.locator("#callbacks-heading")).to_be_visible()
            page.wait_for_timeout(1000)  # the live stream is open
            with app.app_context():
                sent = callbacks.remind()
                db.session.commit()
            assert sent == 2, sent
            expect(page.locator("#live-callbacks .live-callback")).to_have_count(2, timeout=5000)
            shoot(page, out, "ticket-callback-reminder")
            page.goto(f"{base}/tickets/{number}/print")
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
            shoot(page, out, "ticket-print")
            page.pdf(path=str(out / "ticket-print.pdf"), format="A4")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    common.screenshots_main(run)
