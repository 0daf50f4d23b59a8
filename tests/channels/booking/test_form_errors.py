"""The details form: every mistake at once, each next to its own field; language links keep the
chosen slot."""

from __future__ import annotations

import html
import re

from channels.booking.models import Booking
from consult.extensions import db

from .helpers import form_data, slot_in


def _count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(Booking))


def _error_of(text: str, field: str) -> str:
    match = re.search(rf'<p class="field__error" id="{field}-error">([^<]*)</p>', text)
    assert match, f"no error shown for {field}"
    assert f'aria-describedby="{field}-hint {field}-error"' in text or (
        f'aria-describedby="{field}-error"' in text
    )
    return match.group(1)


def test_contact_mistakes_are_all_shown_next_to_their_fields(client):
    response = client.post(
        "/booking/details",
        data=form_data(slot_in(9), email="hanako@", phone="12", kana="", content=""),
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_of(text, "email") == "メールアドレスの形式が正しくありません。"
    assert _error_of(text, "phone").startswith("電話番号の形式が正しくありません。")
    assert _error_of(text, "kana") == "ふりがなを入力してください。"
    assert _error_of(text, "content") == "相談内容を入力してください。"
    # The summary above the form links to each field.
    assert '<a href="#email">メールアドレス：メールアドレスの形式が正しくありません。</a>' in text
    assert _count() == 0


def test_contact_required_by_mode_is_tied_to_the_field(client):
    response = client.post(
        "/booking/details", data=form_data(slot_in(9), mode="phone", phone="", email="a@example.jp")
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_of(text, "phone") == "電話での相談には電話番号を入力してください。"

    response = client.post("/booking/details", data=form_data(slot_in(9), phone="", email=""))
    text = response.get_data(as_text=True)
    assert _error_of(text, "email") == "メールアドレスか電話番号のどちらかを入力してください。"
    assert _error_of(text, "phone") == "メールアドレスか電話番号のどちらかを入力してください。"

    response = client.post(
        "/booking/details?lang=en", data=form_data(slot_in(9), mode="video", email="")
    )
    text = response.get_data(as_text=True)
    assert _error_of(text, "email") == "Please enter an email address for an online consultation."
    assert _count() == 0


def test_language_links_keep_the_slot_after_a_post_with_errors(client):
    start = slot_in(9)
    response = client.post("/booking/details", data=form_data(start, kana=""))
    text = html.unescape(response.get_data(as_text=True))
    link = re.search(r'<a href="([^"]+)" lang="en"', text).group(1)
    assert link.startswith("/booking/details?")
    assert "mode=counter" in link and "lang=en" in link
    assert f"start={start:%Y-%m-%dT%H}%3A{start:%M}" in link
    again = client.get(link)
    assert again.status_code == 200
    assert "Your details" in again.get_data(as_text=True)


def test_language_links_keep_the_query_on_the_slots_page(client):
    text = html.unescape(client.get("/booking/slots?mode=phone&week=2").get_data(as_text=True))
    link = re.search(r'<a href="([^"]+)" lang="en"', text).group(1)
    assert "mode=phone" in link and "week=2" in link and "lang=en" in link
