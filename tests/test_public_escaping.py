"""Every value an administrator sets, planted with markup, is shown escaped on every public page.

Data never goes through gettext: `{{ _(value) }}` marks its result safe, so a category named
`<script>…` ran on the public booking page. Translated data has its own fields (the category's
`name_en`, the settings' `*_EN`), and this test reads every public page in both languages.
"""

from __future__ import annotations

import pytest

from channels.booking import services as booking_services
from channels.booking.models import Mode
from consult.extensions import db
from consult.services import staff as staff_service
from consult.services.actor import SYSTEM
from faq import services as faq_services
from handoff import services as handoff_services
from handoff.models import Response
from tests.channels.booking.helpers import set_capacity, slot_in

SCRIPT = "<script>alert(1)</script>"
BOLD = '<b class="planted">'
PLANTED = {
    "CENTRE_NAME": f"{SCRIPT}市民相談センター",
    "CENTRE_NAME_EN": f"{BOLD}Consultation Centre",
    "BOOKING_PLACE": f"{SCRIPT}本庁舎1階",
    "BOOKING_PLACE_EN": f"{BOLD}City Hall, 1F",
}
RAW = (SCRIPT, BOLD)
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b class=")


@pytest.fixture
def planted(app_factory):
    app = app_factory(**PLANTED)
    with app.app_context():
        set_capacity(Mode.COUNTER, 2)
        category = staff_service.save_category(
            None, name=f"{SCRIPT}福祉", name_en=f"{BOLD}Welfare", code="planted"
        )
        department = staff_service.create_department(None, code="xss", name=f"{SCRIPT}福祉課")
        external = staff_service.create_department(
            None, code="xss-ext", name=f"{BOLD}社会福祉協議会", is_external=True
        )
        entry = faq_services.create_entry(
            SYSTEM,
            question=f"{SCRIPT}介護保険の申請は",
            answer=f"{BOLD}市役所で",
            category_id=category.id,
            department_id=department.id,
            visibility="public",
        )
        faq_services.submit(SYSTEM, entry)
        faq_services.approve(SYSTEM, entry)
        start = slot_in(7)
        booking = booking_services.create_booking(
            SYSTEM,
            booking_services.BookingInput(
                mode="counter",
                starts_at=start,
                name=f"{SCRIPT}山田",
                kana="やまだ",
                content="相談",
                category_id=category.id,
                email="hanako@example.jp",
            ),
        )
        ticket_category = category.id
        from consult.models import Channel
        from consult.services import tickets

        ticket = tickets.create_ticket(SYSTEM, channel=Channel.COUNTER, subject="相談")
        [handoff] = handoff_services.create(
            SYSTEM, ticket, [handoff_services.Request(external.id, "伝達事項", Response.VISIT)]
        )
        link = handoff_services.issue_link(handoff)
        db.session.commit()
        objects = {
            "category": ticket_category,
            "entry": entry.id,
            "start": f"{start:%Y-%m-%dT%H:%M}",
            "manage": booking_services.manage_token(booking),
            "external": link,
        }
        yield app, objects
        db.session.remove()


def _public_pages(o: dict) -> list[str]:
    return [
        "/booking/",
        f"/booking/slots?mode=counter&category={o['category']}",
        f"/booking/details?mode=counter&start={o['start']}&category={o['category']}",
        f"/booking/manage/{o['manage']}",
        "/booking/privacy",
        "/faq",
        f"/faq?category={o['category']}",
        "/faq?q=介護保険",
        f"/faq/{o['entry']}",
        "/display",
        f"/x/handoff/{o['external']}",
    ]


def test_markup_planted_in_administrators_values_is_escaped_on_every_public_page(planted):
    app, objects = planted
    client = app.test_client()
    failures = []
    for lang in ("ja", "en"):
        for path in _public_pages(objects):
            url = f"{path}{'&' if '?' in path else '?'}lang={lang}"
            response = client.get(url)
            body = response.get_data(as_text=True)
            if response.status_code != 200:
                failures.append(f"{url}: {response.status_code}")
                continue
            failures += [f"{url}: unescaped {raw!r}" for raw in RAW if raw in body]
            if not any(escaped in body for escaped in ESCAPED):
                failures.append(f"{url}: the planted values are not shown at all")
    assert not failures, "\n".join(failures)


def test_the_english_pages_show_the_english_names(planted):
    app, objects = planted
    client = app.test_client()
    index = client.get("/booking/?lang=en").get_data(as_text=True)
    assert "&lt;b class=&#34;planted&#34;&gt;Welfare" in index
    assert "&lt;b class=&#34;planted&#34;&gt;Consultation Centre" in index
    index = client.get("/booking/?lang=ja").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;福祉" in index
    assert "&lt;script&gt;alert(1)&lt;/script&gt;市民相談センター" in index
    manage = client.get(f"/booking/manage/{objects['manage']}?lang=en").get_data(as_text=True)
    assert "&lt;b class=&#34;planted&#34;&gt;City Hall, 1F" in manage
