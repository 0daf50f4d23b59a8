"""Citizen match benchmark: `madoguchi citizen match`'s service over 300,000 citizens.

    .venv/bin/python bench/citizens.py --db both --citizens 300000 --queries 200

Builds the citizens with bulk inserts (SQLAlchemy Core executemany) into a temporary SQLite
file and a fresh PostgreSQL database (on MADOGUCHI_BENCH_POSTGRES_URL or
MADOGUCHI_TEST_POSTGRES_URL; created and dropped here) after running the migrations: common
surnames and given names (so one full name is shared by ~50 people, as in a city of this size),
some written with 異体字, one phone each, an email for 30 %, a birth date for 40 %, one case for
every third. Then it times `consult.services.citizens.match` (the function the command line
and the desk call) with its audit row and commit, as the command line runs it, for each kind
of input. The command's own process start (Python, the app factory) is not in the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DB_CHOICES, build_app, kinds, log, scratch, summary  # noqa: E402
from consult.extensions import db  # noqa: E402
from consult.models import (  # noqa: E402
    Channel,
    Citizen,
    CitizenEmail,
    CitizenPhone,
    Priority,
    Status,
    Ticket,
)
from consult.services import citizens  # noqa: E402
from consult.services.actor import Actor  # noqa: E402
from consult.services.normalize import fold_name, name_key  # noqa: E402

CHUNK = 20_000
SURNAMES = [
    "佐藤:さとう",
    "鈴木:すずき",
    "高橋:たかはし",
    "田中:たなか",
    "伊藤:いとう",
    "渡辺:わたなべ",
    "山本:やまもと",
    "中村:なかむら",
    "小林:こばやし",
    "加藤:かとう",
    "吉田:よしだ",
    "山田:やまだ",
    "佐々木:ささき",
    "山口:やまぐち",
    "松本:まつもと",
    "井上:いのうえ",
    "木村:きむら",
    "林:はやし",
    "斎藤:さいとう",
    "清水:しみず",
    "山崎:やまざき",
    "森:もり",
    "池田:いけだ",
    "橋本:はしもと",
    "阿部:あべ",
    "石川:いしかわ",
    "山下:やました",
    "中島:なかじま",
    "石井:いしい",
    "小川:おがわ",
    "前田:まえだ",
    "岡田:おかだ",
    "長谷川:はせがわ",
    "藤田:ふじた",
    "後藤:ごとう",
    "近藤:こんどう",
    "村上:むらかみ",
    "遠藤:えんどう",
    "青木:あおき",
    "坂本:さかもと",
    "斉藤:さいとう",
    "福田:ふくだ",
    "太田:おおた",
    "西村:にしむら",
    "藤井:ふじい",
    "金子:かねこ",
    "岡本:おかもと",
    "藤原:ふじわら",
    "中野:なかの",
    "三浦:みうら",
    "原田:はらだ",
    "中川:なかがわ",
    "松田:まつだ",
    "竹内:たけうち",
    "小野:おの",
    "田村:たむら",
    "中山:なかやま",
    "和田:わだ",
    "石田:いしだ",
    "森田:もりた",
    "上田:うえだ",
    "原:はら",
    "柴田:しばた",
    "酒井:さかい",
    "工藤:くどう",
    "横山:よこやま",
    "宮崎:みやざき",
    "宮本:みやもと",
    "内田:うちだ",
    "高木:たかぎ",
    "安藤:あんどう",
    "島田:しまだ",
    "谷口:たにぐち",
    "大野:おおの",
    "高田:たかだ",
    "丸山:まるやま",
    "今井:いまい",
    "河野:こうの",
    "藤本:ふじもと",
    "村田:むらた",
    "武田:たけだ",
    "浜田:はまだ",
    "渡部:わたなべ",
]
GIVEN = [
    "太郎:たろう",
    "花子:はなこ",
    "健一:けんいち",
    "美咲:みさき",
    "翔太:しょうた",
    "陽子:ようこ",
    "誠:まこと",
    "恵子:けいこ",
    "和子:かずこ",
    "洋子:ようこ",
    "幸子:さちこ",
    "節子:せつこ",
    "博:ひろし",
    "茂:しげる",
    "清:きよし",
    "勇:いさむ",
    "隆:たかし",
    "浩:ひろし",
    "修:おさむ",
    "明美:あけみ",
    "裕子:ゆうこ",
    "由美子:ゆみこ",
    "真由美:まゆみ",
    "直樹:なおき",
    "大輔:だいすけ",
    "拓也:たくや",
    "健太:けんた",
    "翼:つばさ",
    "結衣:ゆい",
    "陽菜:ひな",
    "葵:あおい",
    "蓮:れん",
    "悠真:ゆうま",
    "大翔:ひろと",
    "美穂:みほ",
    "智子:ともこ",
    "久美子:くみこ",
    "正:ただし",
    "進:すすむ",
    "実:みのる",
    "一郎:いちろう",
    "次郎:じろう",
    "三郎:さぶろう",
    "聡:さとし",
    "学:まなぶ",
    "亮:りょう",
    "剛:つよし",
    "彩:あや",
    "愛:あい",
    "舞:まい",
    "優子:ゆうこ",
    "香織:かおり",
    "紀子:のりこ",
    "京子:きょうこ",
    "順子:じゅんこ",
    "久子:ひさこ",
    "文子:ふみこ",
    "弘:ひろし",
    "稔:みのる",
    "昭:あきら",
    "豊:ゆたか",
    "武:たけし",
    "勝:まさる",
    "光:ひかる",
    "歩:あゆみ",
    "純:じゅん",
    "薫:かおる",
    "忍:しのぶ",
    "望:のぞみ",
    "恵:めぐみ",
    "静香:しずか",
    "千尋:ちひろ",
    "沙織:さおり",
    "麻衣:まい",
    "菜々子:ななこ",
    "里美:さとみ",
    "由紀:ゆき",
    "早苗:さなえ",
    "瞳:ひとみ",
]
# How a variant-writing citizen is registered (戸籍の字): typed the common way at intake.
VARIANTS = {"高": "髙", "斎": "齋", "辺": "邊", "崎": "﨑", "浜": "濱", "島": "嶋", "沢": "澤"}


def _pairs(items):
    return [tuple(item.split(":")) for item in items]


def insert_chunks(conn, table, rows) -> int:
    count, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.execute(table.insert(), chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        conn.execute(table.insert(), chunk)
        count += len(chunk)
    return count


def phone_of(cid: int) -> str:
    return f"090{cid // 10000 % 10000:04d}{cid % 10000:04d}"


def international(cid: int) -> str:
    """'+81 90 1234 5678': the same number as a caller ID shows it abroad-style."""
    number = phone_of(cid)
    return f"+81 {number[1:3]} {number[3:7]} {number[7:]}"


def populate(app, n: int) -> list[dict]:
    """The citizens; returns what is known of each, to build the queries from."""
    from flask_migrate import upgrade

    rng = random.Random(2026)
    surnames, given = _pairs(SURNAMES), _pairs(GIVEN)
    people = []
    with app.app_context():
        t0 = time.perf_counter()
        upgrade()
        log(f"migrated in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        now = datetime.now(UTC).replace(microsecond=0)
        rows, phones, emails, tickets = [], [], [], []
        for cid in range(1, n + 1):
            (sn, sk), (gn, gk) = rng.choice(surnames), rng.choice(given)
            written = sn
            if rng.random() < 0.05:
                written = "".join(VARIANTS.get(c, c) for c in sn)
            name, kana = f"{written} {gn}", f"{sk} {gk}"
            birth = (
                date(1930, 1, 1) + timedelta(days=rng.randint(0, 365 * 75))
                if rng.random() < 0.4
                else None
            )
            email = f"user{cid}@example.jp" if rng.random() < 0.3 else None
            people.append(
                {
                    "id": cid,
                    "name": name,
                    "kana": kana,
                    "typed": f"{sn}{gn}",
                    "birth": birth,
                    "email": email,
                    "surname": sn,
                }
            )
            rows.append(
                {
                    "id": cid,
                    "name": name,
                    "kana": kana,
                    "name_key": name_key(name),
                    "kana_key": name_key(kana),
                    "name_fold": fold_name(name),
                    "kana_fold": fold_name(kana),
                    "birth_date": birth,
                    "address": f"高松市番町{cid % 9 + 1}丁目{cid % 30 + 1}-{cid % 20 + 1}",
                    "created_at": now - timedelta(days=cid % 1500),
                }
            )
            phones.append({"citizen_id": cid, "number": phone_of(cid)})
            if email:
                emails.append({"citizen_id": cid, "address": email})
            if cid % 3 == 0:
                seq = cid // 3
                at = now - timedelta(days=cid % 700)
                tickets.append(
                    {
                        "id": seq,
                        "number": f"2026-{seq:06d}",
                        "fiscal_year": 2026,
                        "sequence": seq,
                        "channel": Channel.PHONE,
                        "subject": "介護保険の要介護認定の申請",
                        "status": Status.CLOSED,
                        "is_open": False,
                        "priority": Priority.NORMAL,
                        "citizen_id": cid,
                        "created_at": at,
                        "last_activity_at": at,
                    }
                )
        with db.engine.begin() as conn:
            insert_chunks(conn, Citizen.__table__, rows)
            insert_chunks(conn, CitizenPhone.__table__, phones)
            insert_chunks(conn, CitizenEmail.__table__, emails)
            insert_chunks(conn, Ticket.__table__, tickets)
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        log(
            f"{n:,} citizens, {len(emails):,} emails, {len(tickets):,} cases "
            f"in {time.perf_counter() - t0:.1f}s"
        )
    return people


def queries(people: list[dict], count: int) -> dict[str, list[citizens.CitizenInput]]:
    """Each kind of intake input, `count` of each, from random registered citizens."""
    rng = random.Random(7)
    pick = lambda: rng.choice(people)  # noqa: E731
    with_email = [p for p in people if p["email"]]
    with_birth = [p for p in people if p["birth"]]
    variants = [p for p in people if p["typed"] != p["name"].replace(" ", "")]
    CI = citizens.CitizenInput
    kinds_ = {
        "name + phone": lambda: (p := pick()) and CI(name=p["typed"], phone=phone_of(p["id"])),
        "phone only (any format)": lambda: (p := pick()) and CI(phone=international(p["id"])),
        "email only (upper case)": lambda: (
            (p := rng.choice(with_email)) and CI(email=p["email"].upper())
        ),
        "name + kana + birth": lambda: (
            (p := rng.choice(with_birth))
            and CI(name=p["typed"], kana=p["kana"], birth_date=p["birth"])
        ),
        "異体字 name + phone": lambda: (
            (p := rng.choice(variants)) and CI(name=p["typed"], phone=phone_of(p["id"]))
        ),
        "half-width kana only": lambda: (p := pick()) and CI(kana=_half_width(p["kana"])),
        "name only": lambda: (p := pick()) and CI(name=p["typed"]),
        "surname only (prefix)": lambda: (p := pick()) and CI(name=p["surname"]),
    }
    return {name: [make() for _ in range(count)] for name, make in kinds_.items()}


def _half_width(kana: str) -> str:
    import unicodedata

    table = {unicodedata.normalize("NFKC", chr(c)): chr(c) for c in range(0xFF66, 0xFF9E)}
    katakana = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in kana)
    out = []
    for c in katakana:
        base = unicodedata.normalize("NFD", c)
        if len(base) == 2 and base[0] in table and base[1] in "\u3099\u309a":
            out.append(table[base[0]] + ("ﾞ" if base[1] == "\u3099" else "ﾟ"))
        else:
            out.append(table.get(c, c))
    return "".join(out)


def run(app, inputs: dict[str, list]) -> list[dict]:
    actor = Actor.command_line()
    results = []
    with app.app_context():
        for name, items in inputs.items():
            for data in items[:5]:  # warm-up
                citizens.match(actor, data)
                db.session.commit()
            times, cpu, found = [], [], 0
            for data in items:
                start, start_cpu = time.perf_counter(), time.process_time()
                candidates = citizens.match(actor, data)
                db.session.commit()
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
                found += bool(candidates)
            row = summary(name, times)
            row["found"] = found / len(items)
            # This process's own CPU per call: what the match costs apart from waiting for a
            # loaded machine (on PostgreSQL the server's work is not in it).
            row["cpu_p95"] = summary(name, cpu)["p95"]
            results.append(row)
            log(f"{name}: p50 {row['p50']:.1f} ms, p95 {row['p95']:.1f} ms")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", choices=DB_CHOICES, default="both")
    args = parser.parse_args()
    results = {}
    for kind in kinds(args.db):
        with scratch(kind, "citizens") as (tmp, url):
            log(f"{kind}: building {args.citizens:,} citizens")
            app = build_app(url, tmp)
            people = populate(app, args.citizens)
            results[kind] = run(app, queries(people, args.queries))
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    header = f"{'database':<11} {'input':<26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(f"\n{header} {'cpu p95':>8} {'found':>6}   (load average {os.getloadavg()[0]:.1f})")
    for kind, rows in results.items():
        for row in rows:
            print(
                f"{kind:<11} {row['name']:<26} {row['p50']:>8.1f} {row['p95']:>8.1f}"
                f" {row['max']:>8.1f} {row['cpu_p95']:>8.1f} {row['found']:>6.0%}"
            )


if __name__ == "__main__":
    main()
