"""Disclosure bundle benchmark (開示請求): the bundle of a citizen with 200 tickets.

    .venv/bin/python bench/disclosure.py --db both --tickets 200 --entries 6 --runs 5

After the migrations, in a temporary SQLite file and a fresh PostgreSQL database (created and
dropped here), builds one citizen with `--tickets` cases through the services, each with
`--entries` timeline entries (messages in and out, notes that name another party and a member
of staff, so the redactor has work), plus 2,000 other citizens with a case each as background.
Then it times, as a supervisor produces it: collecting the bundle (every query and every
redaction), the JSON, and the A4 PDF (reportlab), each `--runs` times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DB_CHOICES, build_app, kinds, log, scratch, summary  # noqa: E402
from consult.extensions import db  # noqa: E402

MESSAGES = [
    "子どもの医療費助成について教えてください。連絡は {phone} にお願いします。",
    "隣に住む山本和子さんとのトラブルで相談したいです。山本さんは 080-1618-0339 です。",
    "先日の件、高橋 一郎さんから説明を受けました。ありがとうございました。",
    "住所は{address}です。書類を郵送してください。",
]
REPLIES = [
    "ご相談ありがとうございます。担当課に確認してご連絡します。",
    "必要な書類は本人確認書類と印鑑です。窓口でお待ちしています。",
]


def populate(app, tickets: int, entries: int, others: int) -> int:
    from flask_migrate import upgrade

    from consult.models import Channel, EntryKind
    from consult.services import citizens
    from consult.services import staff as staff_service
    from consult.services import tickets as ticket_services
    from consult.services.actor import SYSTEM, Actor

    with app.app_context():
        t0 = time.perf_counter()
        upgrade()
        log(f"migrated in {time.perf_counter() - t0:.1f}s")
        desk = staff_service.create_staff(
            None,
            login="desk",
            full_name="高橋 一郎",
            display_name="たかはし / Takahashi",
            role="consultant",
            password="bench-password-0123",
        )
        actor = Actor(desk, "127.0.0.1")
        for n in range(others):
            other = citizens.create_citizen(
                SYSTEM, citizens.CitizenInput(name=f"他人 {n}", phone=f"080{n:08d}")
            )
            ticket_services.create_ticket(
                actor, channel=Channel.PHONE, subject="別の方の相談", citizen=other
            )
            if n % 500 == 499:
                db.session.commit()
        person = citizens.create_citizen(
            SYSTEM,
            citizens.CitizenInput(
                name="佐藤 美咲",
                kana="さとう みさき",
                phone="090-3141-5926",
                email="misaki.sato@example.jp",
                address="香川県高松市番町一丁目8番15号",
            ),
        )
        t0 = time.perf_counter()
        for i in range(tickets):
            ticket = ticket_services.create_ticket(
                actor,
                channel=Channel.PHONE if i % 2 else Channel.COUNTER,
                subject=f"相談 {i}",
                citizen=person,
                assignee=desk,
            )
            for j in range(entries):
                kind = (EntryKind.MESSAGE_IN, EntryKind.MESSAGE_OUT, EntryKind.NOTE)[j % 3]
                text = (MESSAGES if kind != EntryKind.MESSAGE_OUT else REPLIES)[
                    (i + j) % (len(MESSAGES) if kind != EntryKind.MESSAGE_OUT else len(REPLIES))
                ].format(phone="090-3141-5926", address=person.address)
                ticket_services.add_entry(ticket, kind, author=desk, body=text)
            if i % 20 == 19:
                db.session.commit()
        db.session.commit()
        log(f"{tickets} tickets × {entries} entries in {time.perf_counter() - t0:.1f}s")
        return person.id


def run(app, citizen_id: int, runs: int) -> list[dict]:
    from consult.models import Role
    from consult.services import disclosure
    from consult.services import staff as staff_service
    from consult.services.actor import Actor

    with app.app_context():
        boss = staff_service.create_staff(
            None,
            login="boss",
            full_name="渡辺 誠",
            display_name="わたなべ / Watanabe",
            role=Role.SUPERVISOR,
            password="bench-password-0123",
        )
        db.session.commit()
        actor = Actor(boss, "127.0.0.1")
        collect, as_json, as_pdf, items, size = [], [], [], 0, (0, 0)
        for _ in range(runs):
            db.session.expire_all()
            t0 = time.perf_counter()
            bundle = disclosure.produce(actor, citizen_id, "pdf+json")
            db.session.commit()
            t1 = time.perf_counter()
            text = bundle.to_json()
            t2 = time.perf_counter()
            pdf = disclosure.render_pdf(bundle)
            t3 = time.perf_counter()
            collect.append((t1 - t0) * 1000)
            as_json.append((t2 - t1) * 1000)
            as_pdf.append((t3 - t2) * 1000)
            items = len(bundle.items)
            size = len(pdf), len(text)
        log(f"{items} items, PDF {size[0] / 1024:.0f} KiB, JSON {size[1] / 1024:.0f} KiB")
        return [
            summary("collect + redact", collect),
            summary("JSON", as_json),
            summary("PDF (A4)", as_pdf),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--entries", type=int, default=6)
    parser.add_argument("--others", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", choices=DB_CHOICES, default="both")
    args = parser.parse_args()
    results = {}
    for kind in kinds(args.db):
        with scratch(kind, "disclosure") as (tmp, url):
            log(f"{kind}: building")
            app = build_app(url, tmp)
            citizen_id = populate(app, args.tickets, args.entries, args.others)
            results[kind] = run(app, citizen_id, args.runs)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    print(
        f"\n{'database':<11} {'step':<18} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}"
        f"   (load average {os.getloadavg()[0]:.1f})"
    )
    for kind, rows in results.items():
        for row in rows:
            print(
                f"{kind:<11} {row['name']:<18} {row['p50']:>9.1f} {row['p95']:>9.1f}"
                f" {row['max']:>9.1f}"
            )


if __name__ == "__main__":
    main()
