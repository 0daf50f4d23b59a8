"""The handoff's mails to departments and external bodies, as queued in the outbox, compared
with tests/fixtures/golden/handoff-mails.txt byte for byte."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import OutboxMessage
from consult.services.actor import Actor
from consult.timeutil import TOKYO, tokyo_today
from handoff import joint, services
from handoff.models import Response, SessionMode, Urgency
from tests.golden import assert_golden, replace_all, replace_patterns

pytestmark = pytest.mark.usefixtures("joint_meeting")


def _mails(after: int = 0) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.channel == "email", OutboxMessage.id > after)
            .order_by(OutboxMessage.id)
        )
    )


def _later(days: int, hour: int) -> datetime:
    return datetime.combine(tokyo_today() + timedelta(days=days), time(hour, 0), tzinfo=TOKYO)


def test_the_mails_to_departments_are_as_in_the_golden_file(
    app, make_staff, make_department, make_ticket
):
    department = make_department(name="市民課", email="shimin@city.example.jp")
    external = make_department(name="よろず支援拠点", is_external=True, email="yorozu@example.jp")
    consultant = make_staff("consultant")
    officer = make_staff("officer", department=department, full_name="窓口 一郎")
    officer.email = "ichiro@city.example.jp"
    supervisor = make_staff("supervisor")
    supervisor.email = "boss@city.example.jp"
    ticket = make_ticket(subject="転入の手続きについて")
    db.session.commit()
    desk = Actor(consultant)

    [visit, outside] = services.create(
        desk,
        ticket,
        [
            services.Request(department.id, "転入届の確認", Response.VISIT, Urgency.URGENT),
            services.Request(external.id, "事業資金の相談", Response.CALLBACK),
        ],
    )
    [joint_handoff] = services.create(
        desk, ticket, [services.Request(department.id, "合同で伺います", Response.JOINT)]
    )
    db.session.commit()
    services.escalate_due(now=visit.accept_by + timedelta(minutes=1))
    services.accept(Actor(officer), joint_handoff)
    services.add_information(desk, joint_handoff, "本人確認書類を持参済みです")
    services.add_information(desk, visit, "お子さんも一緒です")
    services.reissue_link(desk, outside)
    joint.schedule(desk, joint_handoff, starts_at=_later(7, 14), minutes=60, mode=SessionMode.VIDEO)
    joint.schedule(
        desk, joint_handoff, starts_at=_later(8, 10), minutes=30, mode=SessionMode.COUNTER
    )
    joint.cancel(desk, joint_handoff)
    db.session.commit()

    mails = _mails()
    text = "".join(
        f"To: {m.recipient}\nSubject: {m.subject}\n\n{m.body}\n{'-' * 40}\n" for m in mails
    )
    values = {ticket.number: "<NUMBER>"}
    for handoff, name in ((visit, "VISIT"), (outside, "OUTSIDE"), (joint_handoff, "JOINT")):
        values[f"/handoffs/{handoff.id}\n"] = f"/handoffs/<{name}-ID>\n"
    text = replace_all(text, values)
    text = replace_patterns(
        text,
        {
            r"/x/handoff/[A-Za-z0-9_.\-]+": "/x/handoff/<TOKEN>",
            r"\d{4}/\d{2}/\d{2}\(.\) \d{2}:\d{2}(〜\d{2}:\d{2})?": "<WHEN>",
            r"/madoguchi/[A-Za-z0-9_\-]+": "/madoguchi/<CODE>",
        },
    )
    assert_golden("handoff-mails.txt", text)
