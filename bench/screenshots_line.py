"""Screenshots of the LINE channel: a citizen's LINE conversation on the ticket page.

    .venv/bin/python bench/screenshots_line.py [--out docs/screenshots]

Builds the demo centre (as bench/screenshots.py does), configures LINE, sends signed webhook
bodies (follow, text, sticker, location) through the real intake, processes them as the worker
does, and photographs the consultant's ticket page (the LINE panel with a reply being written, and
the timeline) with /usr/bin/chromium. Nothing is sent to LINE: the answers wait in the outbox
(the API host is 127.0.0.1:9, where nothing listens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.screenshots import build_app, shoot  # noqa: E402
from consult import demo  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.models import Channel, Ticket  # noqa: E402
from consult.settings import override as override_settings  # noqa: E402

SECRET = "screenshot-channel-secret"
USER = "U" + "5" * 32


def event(kind: str, at: int, n: int, **fields) -> dict:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": at,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": f"SHOT{n:022d}",
        "deliveryContext": {"isRedelivery": False},
        **fields,
    }


def conversation() -> list[dict]:
    at = int(time.time() * 1000) - 10 * 60_000
    texts = [
        "はじめまして。来月この市に引っ越してくる予定です。",
        "転入届と一緒に、児童手当の手続きもできますか？子どもが2人います。",
    ]
    events = [event("follow", at, 0, follow={"isUnblocked": False})]
    for n, text in enumerate(texts, start=1):
        message = {"type": "text", "id": f"9{n}", "quoteToken": "q", "text": text}
        events.append(event("message", at + n * 60_000, n, message=message))
    sticker = {"type": "sticker", "id": "93", "quoteToken": "q", "packageId": "446",
               "stickerId": "1988", "stickerResourceType": "STATIC",
               "keywords": ["お願いします"]}  # fmt: skip
    events.append(event("message", at + 3 * 60_000, 3, message=sticker))
    place = {"type": "location", "id": "94", "title": "市役所 本庁舎",
             "address": "千代田区霞が関1丁目", "latitude": 35.6764,
             "longitude": 139.7504}  # fmt: skip
    events.append(event("message", at + 4 * 60_000, 4, message=place))
    return events


def deliver(app, events: list[dict]) -> None:
    body = json.dumps({"destination": "U" + "0" * 32, "events": events}, ensure_ascii=False)
    signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
    response = app.test_client().post(
        "/channels/line/webhook",
        data=body.encode(),
        headers={"X-Line-Signature": base64.b64encode(signature).decode()},
        content_type="application/json",
    )
    if response.status_code != 200:
        raise RuntimeError(f"webhook answered {response.status_code}")


def run(out: Path) -> None:
    from channels.line import tasks

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-line-"))
    try:
        app = build_app(tmp)
        override_settings(
            app,
            LINE_CHANNEL_SECRET=SECRET,
            LINE_CHANNEL_ACCESS_TOKEN="screenshot-token",
            LINE_API_HOST="http://127.0.0.1:9",
            LINE_BURST_QUIET_MS=0,
            LINE_PROCESS_AFTER_RESPONSE=False,
        )
        deliver(app, conversation())
        with app.app_context():
            tasks.process_pending()
            number = db.session.scalar(
                sa.select(Ticket.number)
                .where(Ticket.channel == Channel.LINE)
                .order_by(Ticket.id.desc())
            )
            db.session.remove()
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            page = browser.new_context(
                locale="ja-JP", viewport={"width": 1366, "height": 1400}
            ).new_page()
            common.browser_sign_in(page, base, "yamada", demo.DEMO_PASSWORD)
            page.goto(f"{base}/tickets/{number}")
            page.locator(".line-reply textarea").fill(
                "お問い合わせありがとうございます。転入届と同じ日に、"
                "子育て支援課で児童手当の申請もできます。"
            )
            shoot(page, out, "line-ticket")
            page.locator("#timeline").scroll_into_view_if_needed()
            shoot(page, out, "line-timeline")
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    common.screenshots_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
