"""Email ingest benchmark: generated Japanese mail through store → parse → ticket, per second.

    MADOGUCHI_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
      .venv/bin/python bench/email_ingest.py --db both --messages 10000

Generates the messages first (not timed): ISO-2022-JP (with ①, ～ and 髙), Shift_JIS (cp932),
EUC-JP and UTF-8 bodies over 7bit, 8bit, base64 and quoted-printable, encoded-word subjects,
one in five a reply (In-Reply-To an earlier message, so it must be threaded onto its ticket),
some with a small attachment. Then ingests them into a migrated temporary SQLite file and a
fresh PostgreSQL database (created and dropped here), and prints messages per second.

--mode batch (the default) is the bulk path of `mail fetch`, `mail process` and the worker:
groups of --batch messages (as one IMAP poll hands them over) have their raw bytes written
with fsync each and their rows stored with one commit, then are processed with a SAVEPOINT per
message and one commit per batch. --mode single is `madoguchi mail ingest` (an MTA pipe): one
message at a time, a commit for the stored row and one for the ticket.
"""

from __future__ import annotations

import argparse
import base64
import os
import quopri
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.services.jis import encode_iso2022jp  # noqa: E402

SUBJECTS = [
    "児童手当の申請について",
    "①番窓口の予約～変更",
    "髙橋です：住民票の件",
    "ごみの分別",
    "国民健康保険料の減免",
    "空き家の草木が伸びて困っている",
    "定期購入を解約したい",
]
BODIES = [
    "お世話になります。児童手当の申請に必要な書類を教えてください。\n①申請書\n②通帳の写し～",
    "先日窓口で相談した髙橋です。住民票の写しを郵送で請求できますか。",
    "近所の空き家の草木が道路にはみ出していて危ないです。対応をお願いします。",
    "ネット通販で定期購入になっていました。解約の方法を教えてください。㈱〇〇という会社です。",
]
ENCODINGS = ["iso-2022-jp", "shift_jis", "euc-jp", "utf-8"]


def encode(text: str, charset: str) -> bytes:
    if charset == "iso-2022-jp":
        return encode_iso2022jp(text)
    return text.encode({"shift_jis": "cp932", "euc-jp": "euc_jp"}.get(charset, charset))


def subject_word(text: str, charset: str) -> str:
    data = encode(text, charset if charset != "shift_jis" else "iso-2022-jp")
    label = charset if charset != "shift_jis" else "iso-2022-jp"
    return f"=?{label.upper()}?B?{base64.b64encode(data).decode()}?="


def generate(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    messages, ids = [], []
    for i in range(n):
        charset = ENCODINGS[i % len(ENCODINGS)]
        body = rng.choice(BODIES) + f"\n（{i}）"
        if charset == "euc-jp":
            body = body.replace("①", "1.").replace("②", "2.").replace("～", "〜")
            body = body.replace("㈱", "(株)").replace("髙", "高")
        subject = rng.choice(SUBJECTS)
        if charset == "euc-jp":
            subject = subject.replace("①", "1").replace("～", "〜").replace("髙", "高")
        sender = f"citizen{rng.randrange(n // 3 + 1)}@example{rng.randrange(5)}.jp"
        message_id = f"<bench{i}@mail.example.jp>"
        headers = [f"From: {sender}", f"Message-ID: {message_id}", "MIME-Version: 1.0"]
        if ids and i % 5 == 0:
            parent = rng.choice(ids)
            headers.append(f"In-Reply-To: {parent}")
            headers.append(f"References: {parent}")
            subject = "Re: " + subject
        headers.append(f"Subject: {subject_word(subject, charset)}")
        payload = encode(body, charset)
        if charset == "iso-2022-jp":
            cte = "7bit"
        elif charset == "utf-8":
            cte, payload = "base64", base64.encodebytes(payload)
        elif charset == "euc-jp":
            cte, payload = "quoted-printable", quopri.encodestring(payload)
        else:
            cte = "8bit"
        text_part = (
            (
                f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}"
            ).encode()
            + b"\r\n\r\n"
            + payload
        )
        if i % 10 == 3:
            headers.append('Content-Type: multipart/mixed; boundary="bb"')
            raw = "\r\n".join(headers).encode() + b"\r\n\r\n--bb\r\n" + text_part
            raw += (
                b"\r\n--bb\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
                b"filename*=UTF-8''%E7%94%B3%E8%AB%8B%E6%9B%B8.pdf\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--bb--\r\n"
            )
        else:
            raw = "\r\n".join(headers).encode() + b"\r\n" + text_part
        messages.append(raw)
        ids.append(message_id)
    return messages


def bench_one(kind: str, messages: list[bytes], mode: str = "batch", batch: int = 100) -> dict:
    from flask_migrate import upgrade

    from channels.email import tasks
    from channels.email.models import InboundMail, InboundStatus
    from consult.models import Ticket

    with common.scratch(kind, "email") as (tmp, url):
        app = common.build_app(url, tmp)
        with app.app_context():
            upgrade()
            common.log(f"{kind}: ingesting {len(messages):,} messages")
            started = time.perf_counter()
            if mode == "single":
                for raw in messages:
                    tasks.ingest(raw, source="bench")
                    db.session.remove()
            else:
                for start in range(0, len(messages), batch):
                    tasks.ingest_many(messages[start : start + batch], source="bench")
                    db.session.remove()
            elapsed = time.perf_counter() - started
            import sqlalchemy as sa

            tickets = db.session.scalar(sa.select(sa.func.count()).select_from(Ticket))
            quarantined = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(InboundMail)
                .where(InboundMail.status == InboundStatus.QUARANTINED)
            )
            db.session.remove()
            db.engine.dispose()
        return {
            "db": kind,
            "mode": mode,
            "messages": len(messages),
            "seconds": elapsed,
            "per_second": len(messages) / elapsed,
            "tickets": tickets,
            "quarantined": quarantined,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--db", choices=common.DB_CHOICES, default="both")
    parser.add_argument("--mode", choices=["batch", "single"], default="batch")
    parser.add_argument("--batch", type=int, default=100, help="messages per batch")
    args = parser.parse_args()
    messages = generate(args.messages)
    results = [bench_one(kind, messages, args.mode, args.batch) for kind in common.kinds(args.db)]
    print()
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| database   | mode   | messages | seconds | messages/s | tickets | quarantined |")
    print("|------------|--------|----------|---------|------------|---------|-------------|")
    for r in results:
        print(
            f"| {r['db']:<10} | {r['mode']:<6} | {r['messages']:>8,} | {r['seconds']:>7.1f} | "
            f"{r['per_second']:>10.0f} | {r['tickets']:>7,} | {r['quarantined']:>11} |"
        )


if __name__ == "__main__":
    main()
