"""Labels live on the enums (consult.enums.LabelledEnum): what is stored stays the value."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, Status, Ticket


def test_a_member_is_its_value_and_carries_its_label():
    assert Channel.COUNTER == "counter" and str(Channel.COUNTER) == "counter"
    assert Channel("counter") is Channel.COUNTER
    assert Channel.COUNTER.label == "窓口"
    assert Status.labelled()[0] == ("received", "受付")
    assert [value for value, _ in Status.labelled()] == [s.value for s in Status]
    # A value read from JSON (webhook scopes, say) gets its label; an unknown one shows as is.
    assert Channel.label_for("line") == "LINE"
    assert Channel.label_for("fax") == "fax"


def test_the_database_keeps_the_value(app, make_ticket):
    ticket = make_ticket(channel=Channel.PHONE)
    db.session.commit()
    stored = db.session.execute(
        sa.text("SELECT channel FROM ticket WHERE id = :id"), {"id": ticket.id}
    ).scalar_one()
    assert stored == "phone"
    db.session.expire_all()
    again = db.session.get(Ticket, ticket.id)
    assert again.channel is Channel.PHONE and again.channel_label == "電話"
