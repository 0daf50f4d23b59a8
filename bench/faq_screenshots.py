"""Screenshots of the public FAQ for the docs, in Debian's Chromium.

    .venv/bin/python bench/faq_screenshots.py [--out docs/screenshots]

Builds a temporary SQLite database (migrations), imports the municipal FAQ written for the tests
(published), serves the app on 127.0.0.1 and saves /faq, a search, an entry page and the English
page as 1366x768 PNGs. Never downloads a browser: /usr/bin/chromium must exist.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import launch_chromium, serve  # noqa: E402
from consult import create_app  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.services import staff as staff_service  # noqa: E402
from consult.services.actor import SYSTEM  # noqa: E402
from faq import services  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "faq"


def build_app(tmp: Path):
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'faq.db'}",
            "DATA_DIR": str(tmp / "data"),
            "SECRET_KEY": "screenshots-only-secret-key-1234567890abcdef",
            "ENV": "development",
            "PASSWORD_HASH_COST": "fast",
            "TOTP_REQUIRED": "none",
        },
        instance_path=str(tmp / "instance"),
    )
    with app.app_context():
        upgrade()
        import json

        rows = [json.loads(line) for line in (FIXTURES / "municipal_faq.jsonl").open()]
        for number, name in enumerate(dict.fromkeys(r["category"] for r in rows), start=1):
            staff_service.save_category(None, name=name, code=f"faq{number}")
        db.session.commit()
        services.import_file(SYSTEM, FIXTURES / "municipal_faq.jsonl", publish=True)
        db.session.commit()
        services.index().sync()
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-faq-shots-"))
    try:
        app = build_app(tmp)
        with serve(app) as base, sync_playwright() as playwright:
            browser = launch_chromium(playwright, ["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="ja-JP")
            page.goto(f"{base}/faq?lang=ja")
            page.screenshot(path=str(out / "faq-index.png"), full_page=True)
            page.goto(f"{base}/faq?q=住民票+取りたい")
            page.screenshot(path=str(out / "faq-search.png"), full_page=True)
            page.get_by_role("link", name="住民票の写しはどこで取得できますか？").click()
            page.screenshot(path=str(out / "faq-entry.png"), full_page=True)
            page.goto(f"{base}/faq?lang=en&q=マイナンバーカード")
            page.screenshot(path=str(out / "faq-search-en.png"), full_page=True)
            browser.close()
        print(f"saved to {out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
