"""The desk's pages send as many queries for 50 rows as for 5: no query per row (N+1).

Each count is pinned per backend (SQLite sends its BEGIN IMMEDIATE as a statement of its own):
a change that adds a query per row fails here, and one that adds a query to the page shows up
as a new number to look at. The statements are listed in the failure message.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, Citizen, Priority, Ticket
from consult.services import tickets
from consult.services.actor import Actor
from tests.consult.http import call
from tests.helpers import sign_in

# Each signed-in page also reads the live channel's cursor (max(live_event.id)) once, and the
# queue and the ticket page read the callbacks due.
# + one for the protected persons' strings the reader may not see (支援措置: the response
# scrubber of consult/app.py), on every page.
QUEUE = {"sqlite": 14, "postgresql": 13}
# + the help button's place; + the attachments panel; + related tickets and tickets merged
# into this one (issue 16), one query each; + the voice panel (issue 19: a request to the city,
# whether the citizen was asked how satisfied they were), one query; + the consumer alerts
# already made from this case (faq.alerts' part of the FAQ panel), one query.
TICKET = {"sqlite": 35, "postgresql": 34}


def page_queries(app, client, count_queries, url: str):
    """The statements of one GET of `url`, after a first one (per-process caches filled)."""
    assert call(app, client, "GET", url).status_code == 200
    with count_queries() as queries:
        response = call(app, client, "GET", url)
    assert response.status_code == 200
    return queries


@pytest.fixture
def desk(app, make_staff, make_category):
    staff = [make_staff("consultant") for _ in range(3)] + [make_staff("supervisor")]
    categories = [make_category() for _ in range(3)]
    return {"staff": staff, "categories": categories, "client": sign_in(app, staff[0])}


def add_tickets(desk, count: int, first: int = 0) -> None:
    """Tickets whose rows each name another category, citizen and assignee."""
    actor = Actor(desk["staff"][0], "127.0.0.1")
    for n in range(first, first + count):
        tickets.create_ticket(
            actor,
            channel=list(Channel)[n % len(Channel)],
            subject=f"相談 {n}",
            category_id=desk["categories"][n % 3].id,
            citizen=Citizen(name=f"市民 {n}", kana=f"しみん {n}"),
            priority=Priority.URGENT if n % 5 == 0 else Priority.NORMAL,
            assignee=desk["staff"][n % 4],
            first_note=f"メモ {n}",
        )
    db.session.commit()


def test_the_queue_sends_the_same_queries_for_5_and_50_tickets(app, backend, desk, count_queries):
    add_tickets(desk, 5)
    five = page_queries(app, desk["client"], count_queries, "/tickets")
    add_tickets(desk, 45, first=5)
    fifty = page_queries(app, desk["client"], count_queries, "/tickets")
    page = call(app, desk["client"], "GET", "/tickets").get_data(as_text=True)
    assert "相談 49" in page and "相談 0" in page  # the 50 rows are on the page
    assert fifty.count == five.count, f"5 tickets: {five}\n50 tickets: {fifty}"
    assert five.count == QUEUE[backend], str(five)


def test_the_ticket_page_sends_the_same_queries_for_5_and_50_entries(
    app, backend, desk, count_queries
):
    add_tickets(desk, 1)
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.subject == "相談 0"))
    url = f"/tickets/{ticket.number}"

    def add_notes(count: int) -> None:
        for n in range(count):
            author = Actor(desk["staff"][n % 4], "127.0.0.1")
            tickets.add_note(author, db.session.get(Ticket, ticket.id), f"経過メモ {n}")
        db.session.commit()

    add_notes(4)  # with the first note: 5 timeline entries
    five = page_queries(app, desk["client"], count_queries, url)
    add_notes(45)
    fifty = page_queries(app, desk["client"], count_queries, url)
    page = call(app, desk["client"], "GET", url).get_data(as_text=True)
    assert "経過メモ 44" in page
    assert fifty.count == five.count, f"5 entries: {five}\n50 entries: {fifty}"
    assert five.count == TICKET[backend], str(five)
