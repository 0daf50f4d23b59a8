"""Demo data: a real city's departments (Takamatsu, CC BY 4.0), staff in every role, tickets.

The figures follow the seeds: Imabari's centre takes counter, phone, email, LINE and booked
consultations about procedures, consumer trouble, requests, business, household budgets, worries.
"""

from __future__ import annotations

import csv
import random
from datetime import timedelta
from importlib import resources

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, Department, Priority, Staff, Status
from consult.services import citizens, tickets
from consult.services import staff as staff_service
from consult.services.actor import SYSTEM, Actor
from consult.timeutil import utcnow

DEMO_PASSWORD = "madoguchi-demo-2026"  # noqa: S105 (printed for the demo centre)

DEMO_STAFF = [
    ("yamada", "山田 花子", "やまだ / Yamada", "consultant", None),
    ("sato", "佐藤 健一", "さとう / Sato", "consultant", None),
    ("tanaka", "田中 美咲", "たなか / Tanaka", "supervisor", None),
    ("suzuki", "鈴木 一郎", "すずき / Suzuki", "officer", "shimin"),
    ("takahashi", "高橋 直子", "たかはし / Takahashi", "officer", "kokuho"),
    ("ito", "伊藤 誠", "いとう / Ito", "support", None),
    ("admin", "渡辺 聡", "わたなべ / Watanabe", "admin", None),
]

LOGIN_HELP = (
    "デモ用ログイン（パスワードは共通: " + DEMO_PASSWORD + "）\n"
    "  相談員: yamada / sato   センター責任者: tanaka\n"
    "  担当課職員: suzuki（市民課）/ takahashi（国保・高齢者医療課）\n"
    "  安心対応サポート室: ito   管理者: admin"
)

# Codes for a few departments the demo staff belong to; the rest are numbered.
KNOWN_CODES = {"市民局市民課": "shimin", "健康福祉局国保・高齢者医療課": "kokuho"}

EXTERNAL = [
    ("shakyo", "社会福祉協議会", "soudan@shakyo.example.jp"),
    ("yorozu", "よろず支援拠点", "yorozu@example.jp"),
    ("shohi", "消費生活センター", "shohi-center@example.jp"),
    ("police", "警察署 生活安全課", "seian@police.example.jp"),
]

TOPICS = {
    "procedures": [
        ("住民票の写しの取り方", "転居後に住民票の写しが必要。コンビニ交付が使えるか知りたい。"),
        ("転入届の手続き", "転勤で引っ越してきた。必要な手続きを一度に教えてほしい。"),
        ("マイナンバーカードの更新", "電子証明書の有効期限の通知が届いた。更新の方法を知りたい。"),
        ("児童手当の申請", "第二子が生まれた。児童手当の額の変更手続きを確認したい。"),
        ("国民健康保険の加入", "退職して会社の保険を抜けた。国保の加入手続きと保険料を知りたい。"),
        ("印鑑登録の廃止", "実印を紛失した。登録の廃止と新しい登録をしたい。"),
    ],
    "consumer": [
        ("定期購入のトラブル", "1回だけのつもりで注文した健康食品が定期購入になっていた。"),
        (
            "訪問販売の屋根工事",
            "突然来た業者に屋根の修理を契約させられた。クーリング・オフしたい。",
        ),
        ("架空請求のメール", "身に覚えのない有料サイトの請求メールが届いた。"),
        ("特殊詐欺の電話", "市役所を名乗る還付金の電話があった。ATMに行くよう言われた。"),
    ],
    "requests": [
        ("道路の陥没", "自宅前の市道に穴があいている。自転車が転倒しそうで危ない。"),
        ("公園の遊具", "近所の公園のブランコの鎖がさびている。点検してほしい。"),
        ("ごみ集積所のカラス被害", "集積所がカラスに荒らされる。ネットを貸してもらえないか。"),
    ],
    "business": [
        ("創業の資金相談", "カフェを開業したい。市の補助金や融資の制度を知りたい。"),
        ("事業承継の相談", "親の代からの商店を継ぐか迷っている。相談先を知りたい。"),
    ],
    "household": [
        ("生活費が足りない", "収入が減り家賃の支払いが苦しい。使える支援制度はあるか。"),
        ("多重債務の相談", "複数の消費者金融から借り入れがあり返済できない。"),
    ],
    "worries": [
        ("隣家の騒音", "隣の家の夜間の騒音で眠れない。どこに相談すればよいか。"),
        ("高齢の親の見守り", "一人暮らしの母の様子が心配。見守りのサービスを知りたい。"),
        ("空き家の管理", "実家が空き家になり草木が伸びて近所から苦情が来た。"),
    ],
    "other": [
        ("市役所の駐車場", "来庁時の駐車場の場所と料金を知りたい。"),
    ],
}

SURNAMES = [
    "佐々木",
    "松本",
    "井上",
    "木村",
    "林",
    "清水",
    "山口",
    "森",
    "池田",
    "橋本",
    "石川",
    "前田",
    "藤田",
    "小川",
    "岡田",
]
GIVEN = ["陽子", "誠", "恵子", "大輔", "由美", "翔太", "明美", "隆", "さくら", "健太", "和子", "浩"]
KANA_SURNAMES = {
    "佐々木": "ささき",
    "松本": "まつもと",
    "井上": "いのうえ",
    "木村": "きむら",
    "林": "はやし",
    "清水": "しみず",
    "山口": "やまぐち",
    "森": "もり",
    "池田": "いけだ",
    "橋本": "はしもと",
    "石川": "いしかわ",
    "前田": "まえだ",
    "藤田": "ふじた",
    "小川": "おがわ",
    "岡田": "おかだ",
}

CHANNEL_WEIGHTS = [
    (Channel.COUNTER, 40),
    (Channel.PHONE, 30),
    (Channel.EMAIL, 12),
    (Channel.LINE, 10),
    (Channel.BOOKING, 8),
]

RESOLUTIONS = [
    "必要書類と窓口を案内し、担当課職員が窓口で手続きを完了した。",
    "制度の概要を説明し、申請書を渡した。後日郵送で提出予定。",
    "消費生活相談員が契約書を確認し、クーリング・オフの通知書の書き方を案内した。",
    "担当課に引き継ぎ、現地確認のうえ補修済み。相談者へ電話で報告した。",
    "関係機関（社会福祉協議会）と合同で面談し、支援制度につないだ。",
]


def load_departments() -> list[Department]:
    data = resources.files("consult").joinpath("data/takamatsu_departments.csv")
    departments = []
    with data.open(encoding="utf-8") as handle:
        for index, row in enumerate(csv.DictReader(handle), start=1):
            full = row["所属名称"]
            department = staff_service.create_department(
                None,
                code=KNOWN_CODES.get(full, f"tk{index:03d}"),
                name=row["課"],
                parent_name=" ".join(part for part in (row["局"], row["部"]) if part) or None,
            )
            department.sort_order = index
            departments.append(department)
    for code, name, email in EXTERNAL:
        staff_service.create_department(None, code=code, name=name, is_external=True, email=email)
    return departments


def seed(if_empty: bool = True, ticket_count: int = 300, rng_seed: int = 2026) -> int | None:
    """Load the demo centre; returns the number of tickets created, or None when already there."""
    if if_empty and db.session.scalar(sa.select(sa.func.count(Staff.id))):
        return None
    rng = random.Random(rng_seed)  # noqa: S311 (demo content, not security)
    categories = {
        category.code: category
        for category in (
            staff_service.save_category(None, name=name, code=code)
            for code, name in staff_service.DEFAULT_CATEGORIES
        )
    }
    load_departments()
    db.session.flush()
    members = {}
    for login, full_name, display, role, department in DEMO_STAFF:
        members[login] = staff_service.create_staff(
            None,
            login=login,
            full_name=full_name,
            display_name=display,
            role=role,
            password=DEMO_PASSWORD,
            department_code=department,
            email=f"{login}@example.lg.jp",
        )
    desk = [members["yamada"], members["sato"], members["tanaka"]]
    people = []
    for index in range(max(ticket_count // 3, 1)):
        surname = rng.choice(SURNAMES)
        given = rng.choice(GIVEN)
        people.append(
            citizens.create_citizen(
                SYSTEM,
                citizens.CitizenInput(
                    name=f"{surname} {given}",
                    kana=f"{KANA_SURNAMES[surname]} ",
                    phone=f"090-{rng.randint(1000, 9999)}-{index % 10000:04d}",
                ),
            )
        )
    now = utcnow()
    channels, weights = zip(*CHANNEL_WEIGHTS, strict=True)
    for index in range(ticket_count):
        code = rng.choice(list(TOPICS))
        subject, text = rng.choice(TOPICS[code])
        channel = rng.choices(channels, weights)[0]
        # Spread over the last 7 months, as Imabari's 1,282 consultations in 7 months were.
        created = now - timedelta(days=rng.uniform(0, 210), hours=rng.uniform(0, 8))
        if index >= ticket_count - 12:
            created = now - timedelta(minutes=rng.uniform(5, 240))
        staff = rng.choice(desk)
        actor = Actor(staff, "seed")
        citizen = rng.choice(people) if rng.random() > 0.2 else None
        ticket = tickets.create_ticket(
            actor if channel in {Channel.COUNTER, Channel.PHONE} else SYSTEM,
            channel=channel,
            subject=subject,
            category_id=categories[code].id,
            citizen=citizen,
            priority=rng.choices(list(Priority), [5, 80, 12, 3])[0],
            first_message=text if channel not in {Channel.COUNTER, Channel.PHONE} else None,
            first_note=text if channel in {Channel.COUNTER, Channel.PHONE} else None,
            session_started_at=created if channel in {Channel.COUNTER, Channel.PHONE} else None,
            at=created,
        )
        ticket.assignee = staff if rng.random() > 0.3 else None
        age_days = (now - created).days
        if channel in {Channel.COUNTER, Channel.PHONE}:
            minutes = rng.choice([8, 12, 15, 20, 25, 35, 45, 70])
            tickets.end_session(actor, ticket, at=created + timedelta(minutes=minutes))
        if age_days > 14 or rng.random() < 0.5:
            tickets.add_entry(
                ticket,
                tickets.EntryKind.NOTE,
                author=staff,
                body="担当課に確認し、必要な書類を案内した。",
                at=created + timedelta(minutes=30),
            )
            ticket.status = Status.IN_PROGRESS
            if age_days > 7:
                summary = rng.choice(RESOLUTIONS)
                tickets.add_entry(
                    ticket,
                    tickets.EntryKind.STATUS_CHANGE,
                    author=staff,
                    body=summary,
                    data={"from": "in_progress", "to": "closed", "label": "対応中 → 完了"},
                    at=created + timedelta(hours=2),
                )
                ticket.status = Status.CLOSED
                ticket.is_open = False
                ticket.resolution_summary = summary
                ticket.closed_at = created + timedelta(hours=2)
    db.session.flush()
    from consult import plugins

    for seeder in plugins.registry().demo_seeders:
        seeder(members)
    return ticket_count
