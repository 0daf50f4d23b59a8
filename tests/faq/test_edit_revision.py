"""Two editors who opened one FAQ entry's edit page at different times (issue 14, second pass).

The save used to check only the revision read in its own request, so the later save replaced the
earlier one without a word. The edit form now carries the revision it showed: the second save
is refused with a Japanese message and the text typed stays in the form.
"""

from __future__ import annotations

import html
import re

import sqlalchemy as sa

from consult.extensions import db
from faq import services
from faq.models import FaqEntry, FaqRevision
from tests.consult.http import call
from tests.helpers import sign_in


def _revision_field(page: str) -> str:
    """The revision the form carries ("" from a form without one: then the save checks none)."""
    found = re.search(r'name="revision"[^>]*value="([^"]*)"', page)
    return found[1] if found else ""


def _edit(entry: FaqEntry, answer: str, revision: str) -> dict:
    return {
        "question": entry.question,
        "answer": answer,
        "keywords": "",
        "category_id": "",
        "department_id": "",
        "visibility": "public",
        "revision": revision,
    }


def test_second_editor_with_an_older_page_is_refused_and_keeps_the_text(
    app, faq_people, make_staff
):
    author, _ = faq_people
    entry = services.create_entry(
        author,
        question="住民票の写しはどこで取れますか。",
        answer="市役所1階の市民課窓口で取れます。",
        visibility="public",
    )
    db.session.commit()
    entry_id = entry.id
    first = sign_in(app, make_staff("consultant"))
    second = sign_in(app, make_staff("consultant"))
    url = f"/staff/faq/{entry_id}/edit"
    # Both open the edit page; the first saves, then the second saves from its older page.
    first_page = call(app, first, "GET", url).get_data(as_text=True)
    second_page = call(app, second, "GET", url).get_data(as_text=True)
    seen = _revision_field(second_page)
    assert _revision_field(first_page) == seen

    saved = call(app, first, "POST", url, data=_edit(entry, "市民課窓口（1階）で取れます。", seen))
    assert saved.status_code == 302
    mine = "コンビニのマルチコピー機でも、マイナンバーカードで取れます。"
    refused = call(app, second, "POST", url, data=_edit(entry, mine, seen))

    assert refused.status_code == 422
    page = html.unescape(refused.get_data(as_text=True))
    assert "ほかの職員が先に変更しました。" in page
    assert mine in page  # nothing typed is lost
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry_id).answer == "市民課窓口（1階）で取れます。"
    numbers = db.session.scalars(
        sa.select(FaqRevision.number).where(FaqRevision.entry_id == entry_id)
    ).all()
    assert sorted(numbers) == [1, 2]

    # Having seen the message, the second editor saves again: the form now carries the
    # revision that refused it, and the save goes through.
    again = call(app, second, "POST", url, data=_edit(entry, mine, _revision_field(page)))
    assert again.status_code == 302
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry_id).answer == mine
