"""Screenshots of the email channel: a ticket with a citizen's Japanese mail, and the quarantine.

    .venv/bin/python bench/screenshots_email.py [--out docs/screenshots]

Builds the demo centre (as bench/screenshots.py does), ingests a few mails through the same
service as `madoguchi mail ingest`, and photographs the pages with /usr/bin/chromium.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.screenshots import build_app, shoot  # noqa: E402
from consult import demo  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.services.actor import SYSTEM  # noqa: E402
from consult.services.jis import encode_iso2022jp  # noqa: E402

MAIL_BODY = (
    "市民相談センター 御中\n\n"
    "はじめてご連絡します。髙橋と申します。\n"
    "①児童手当の申請期限と、②必要な書類を教えていただけますか。\n"
    "来月～再来月に転入する予定です。\n\n"
    "よろしくお願いいたします。\n\n"
    "2026年11月20日 9:12 市民相談センター:\n"
    "> お問い合わせありがとうございます。\n> 前回のご案内です。"
)


def mails() -> list[bytes]:
    head = (
        "From: =?UTF-8?B?6auZ5qmLIOiKseWtkA==?= <hanako.takahashi@docomo.ne.jp>\r\n"
        "To: soudan@example.lg.jp\r\n"
        "Subject: =?ISO-2022-JP?B?{}?=\r\nMessage-ID: <shot1@docomo.ne.jp>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    import base64

    subject = base64.b64encode(encode_iso2022jp("児童手当の申請について（①期限 ②書類）")).decode()
    first = head.format(subject).encode() + (
        b"--b\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        + encode_iso2022jp(MAIL_BODY)
        + b"\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b"filename*=UTF-8''%E8%BB%A2%E5%85%A5%E4%BA%88%E5%AE%9A.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    broken = b"Subject: test\r\nMessage-ID: <broken@x>\r\n\r\nno sender here"
    return [first, broken]


def run(out: Path) -> None:
    from channels.email import services, tasks

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-shots-email-"))
    try:
        app = build_app(tmp)
        with app.app_context():
            number = tasks.ingest(mails()[0]).ticket.number
            tasks.ingest(mails()[1])
            services.save_template(
                SYSTEM,
                None,
                "児童手当の案内",
                "お問い合わせありがとうございます。\n児童手当の申請は、転入日の翌日から15日以内に…",
            )
            db.session.commit()
            db.session.remove()
        with common.serve(app) as base, sync_playwright() as playwright:
            browser = common.launch_chromium(playwright)
            for login, pages in (
                ("yamada", [(f"/tickets/{number}", "email-ticket")]),
                ("admin", [("/email/inbound", "email-quarantine")]),
            ):
                page = browser.new_context(
                    locale="ja-JP", viewport={"width": 1366, "height": 1100}
                ).new_page()
                common.browser_sign_in(page, base, login, demo.DEMO_PASSWORD)
                for path, name in pages:
                    page.goto(base + path)
                    if name == "email-ticket":
                        page.locator("details.mail__quoted summary").click()
                    shoot(page, out, name)
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    common.screenshots_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
