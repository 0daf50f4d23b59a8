"""The handoff inbox sends as many queries for 50 handoffs as for 5: no query per row (N+1).

Pinned per backend (SQLite sends its BEGIN IMMEDIATE as a statement of its own); the
statements are listed in the failure message.
"""

from __future__ import annotations

import pytest

from consult.extensions import db
from consult.services import tickets
from consult.services.actor import Actor
from handoff import services
from handoff.models import Response
from tests.consult.http import call
from tests.consult.test_query_counts import page_queries
from tests.helpers import sign_in

# The page also reads the live cursor, and for 来庁して対応 the requesting staff and the counter
# visits (one query each, through the plugin contract), and the consumer alerts every
# department sees (faq.alerts, one query).
# + the protected persons' strings this reader may not see (the response scrubber).
INBOX = {"sqlite": 12, "postgresql": 11}


@pytest.fixture
def centre(app, make_staff, make_department):
    departments = [make_department() for _ in range(3)]
    consultant = make_staff("consultant")
    officer = make_staff("officer", department=departments[0])
    return {"departments": departments, "consultant": consultant, "officer": officer}


def hand_over(centre, count: int, first: int = 0, *, spread: bool) -> None:
    """`count` cases, each handed to a department (the officer's, or each in turn)."""
    actor = Actor(centre["consultant"], "127.0.0.1")
    for n in range(first, first + count):
        department = centre["departments"][n % 3 if spread else 0]
        ticket = tickets.create_ticket(actor, channel="counter", subject=f"引継ぎ {n}")
        services.create(
            actor,
            ticket,
            [services.Request(department.id, f"確認をお願いします {n}", Response.VISIT)],
        )
    db.session.commit()


# Who looks: an officer sees their department's handoffs, the desk every department's.
@pytest.mark.parametrize("who", ["officer", "consultant"])
def test_the_inbox_sends_the_same_queries_for_5_and_50_handoffs(
    app, backend, centre, count_queries, who
):
    spread = who != "officer"
    client = sign_in(app, centre[who])
    hand_over(centre, 5, spread=spread)
    five = page_queries(app, client, count_queries, "/handoffs?tab=new")
    hand_over(centre, 45, first=5, spread=spread)
    fifty = page_queries(app, client, count_queries, "/handoffs?tab=new")
    page = call(app, client, "GET", "/handoffs?tab=new").get_data(as_text=True)
    # Newest first, 50 to a page: the 50 handoffs are all there.
    assert page.count('href="/handoffs/') >= 50
    assert fifty.count == five.count, f"5 handoffs: {five}\n50 handoffs: {fifty}"
    assert five.count == INBOX[backend], str(five)
