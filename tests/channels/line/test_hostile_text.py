"""A LINE message with NUL, other control characters or a lone surrogate is kept, cleaned.

LINE delivers whatever a phone sent, JSON-escaped: "\\u0000" arrives as a real NUL after parsing,
which PostgreSQL refuses in text, and "\\ud800" as a lone surrogate, which it cannot even encode.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from channels.line.models import EventStatus, LineEvent
from consult.extensions import db
from consult.models import Channel, EntryKind, Ticket
from tests.channels.line.conftest import post_webhook, run_worker, text_event
from tests.channels.line.fake_line import sign


def test_a_message_with_control_characters_is_stored_without_them(line_client, line_app):
    hostile = "ごみの\x00出し方\x07について\x85\ud800\n教えてください\t。"
    # ensure_ascii: the surrogate travels escaped, as JSON allows and as LINE would send it.
    body = json.dumps({"destination": "U" + "0" * 32, "events": [text_event(hostile)]})
    response = post_webhook(line_client, body, signature=sign(body))
    assert response.status_code == 200
    run_worker(line_app)

    [event] = db.session.scalars(sa.select(LineEvent)).all()
    assert event.status == EventStatus.DONE, event.status
    [ticket] = db.session.scalars(sa.select(Ticket).where(Ticket.channel == Channel.LINE)).all()
    [message] = [e for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN]
    assert message.body == "ごみの出し方について\n教えてください\t。"
    assert ticket.subject == "LINE：ごみの出し方について 教えてください 。"
