"""The demo centre's handoffs (`make run`)."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Department, Ticket
from consult.services.actor import Actor
from handoff.models import Response, Urgency
from handoff.services.centre import Request, create
from handoff.services.officer import Record, accept, finish, on_the_way


def seed_demo(members: dict) -> None:
    """Demo handoffs on the demo centre's open tickets: one new, one on the way, one done."""
    shimin = db.session.scalar(sa.select(Department).where(Department.code == "shimin"))
    kokuho = db.session.scalar(sa.select(Department).where(Department.code == "kokuho"))
    if shimin is None or kokuho is None:
        return
    open_tickets = list(
        db.session.scalars(
            sa.select(Ticket)
            .where(Ticket.is_open.is_(True))
            .order_by(Ticket.last_activity_at.desc())
            .limit(3)
        )
    )
    if len(open_tickets) < 3:
        return
    desk = Actor(members["yamada"], "seed")
    create(
        desk,
        open_tickets[0],
        [Request(shimin.id, "転入届の記載内容を窓口で一緒に確認してください。", Response.VISIT)],
    )
    [coming] = create(
        desk,
        open_tickets[1],
        [
            Request(
                kokuho.id,
                "退職による収入減で保険料の減免を希望。離職票の写しは持参済み。",
                Response.VISIT,
                Urgency.URGENT,
            )
        ],
    )
    officer = Actor(members["takahashi"], "seed")
    accept(officer, coming)
    on_the_way(officer, coming, 5)
    [done] = create(
        desk,
        open_tickets[2],
        [
            Request(
                shimin.id,
                "住民票の写しの請求方法を折り返し電話で説明してください。",
                Response.CALLBACK,
            )
        ],
    )
    suzuki = Actor(members["suzuki"], "seed")
    accept(suzuki, done)
    finish(
        suzuki,
        done,
        Record("請求方法と必要書類を電話で説明した", "相談者が明日来庁して請求する"),
    )
