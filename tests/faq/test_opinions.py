"""「寄せられたご意見と回答」 (issue 19): an answered request becomes a redacted draft, a
supervisor other than its author approves it, and the public page (Japanese and English) shows
it. Run over the redaction corpus: no published entry, and no public page, ever carries the
personal data the corpus marks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind
from consult.services import citizens, tickets
from consult.services.actor import Actor
from consult.voice import services as voice
from faq.models import FaqStatus
from faq.opinions import services as opinions
from faq.opinions.models import OpinionEntry
from faq.services import PublishBlocked
from tests.helpers import sign_in

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "redaction" / "corpus.jsonl"
MUST_FIND = {"phone", "email", "my_number", "postal_code"}


def _answered_request(
    actor: Actor, text: str, answer: str, name="高松 一郎", answered_by: Actor | None = None
):
    citizen = citizens.create_citizen(
        actor, citizens.CitizenInput(name=name, phone="090-1234-5678")
    )
    ticket = tickets.create_ticket(
        actor, channel=Channel.EMAIL, subject="市への要望", citizen=citizen
    )
    tickets.add_entry(ticket, EntryKind.MESSAGE_IN, body=text)
    item = voice.mark_request(actor, ticket, "request")
    voice.record_answer(answered_by or actor, ticket, answer)
    return item


def test_request_to_published_entry_through_the_pages(app, login_as, make_staff):
    author = login_as("supervisor")
    actor = Actor(author, "127.0.0.1")
    item = _answered_request(
        actor,
        "高松一郎です。090-1234-5678。自宅前（高松市番町3-4-5）の市道の街灯が暗いので直してほしい。",
        "高松 一郎様　ご要望ありがとうございました。道路課で現地を確認し、街灯を交換しました。",
    )
    db.session.commit()
    client = app.test_client()
    sign_in(client, author)
    made = client.post(f"/staff/opinions/from-request/{item.id}")
    assert made.status_code == 302
    entry = db.session.scalar(sa.select(OpinionEntry))
    for secret in ("高松一郎", "高松 一郎", "090-1234-5678", "番町3-4-5"):
        assert secret not in entry.opinion and secret not in entry.answer
    assert "街灯" in entry.opinion and "交換しました" in entry.answer

    # Edit the draft with an English version, submit; the author cannot approve it.
    client.post(
        f"/staff/opinions/{entry.id}",
        data={
            "opinion": "市道の街灯が暗いので直してほしい。",
            "answer": "道路課で現地を確認し、街灯を交換しました。",
            "opinion_en": "A street light on a city road is too dark; please fix it.",
            "answer_en": "The Roads Division checked the site and replaced the light.",
        },
    )
    client.post(f"/staff/opinions/{entry.id}/submit")
    client.post(f"/staff/opinions/{entry.id}/approve")
    db.session.expire_all()
    assert db.session.get(OpinionEntry, entry.id).status == FaqStatus.REVIEW
    citizen = app.test_client()
    assert "街灯" not in citizen.get("/opinions").get_data(as_text=True)

    reviewer = app.test_client()
    sign_in(reviewer, make_staff("supervisor"))
    reviewer.post(f"/staff/opinions/{entry.id}/approve")
    db.session.expire_all()
    assert db.session.get(OpinionEntry, entry.id).status == FaqStatus.PUBLISHED

    japanese = citizen.get("/opinions?lang=ja").get_data(as_text=True)
    assert "寄せられたご意見と回答" in japanese and "市道の街灯が暗い" in japanese
    english = citizen.get("/opinions?lang=en").get_data(as_text=True)
    assert "Opinions from citizens and the city" in english
    assert "The Roads Division checked the site" in english
    assert "090-1234-5678" not in japanese + english


def test_an_entry_with_personal_data_typed_back_in_cannot_be_published(app, make_staff):
    author, reviewer = make_staff("supervisor"), make_staff("supervisor")
    item = _answered_request(Actor(author, None), "公園の遊具を増やしてほしい。", "検討します。")
    entry = opinions.draft_from_request(Actor(author, None), item.id)
    opinions.update(
        Actor(author, None),
        entry,
        opinion="公園の遊具を増やしてほしい。",
        answer="検討します。",
        answer_en="Please call me at 090-8765-4321 or mail taro@example.jp",
    )
    opinions.submit(Actor(author, None), entry)
    with pytest.raises(PublishBlocked):
        opinions.approve(Actor(reviewer, None), entry)
    db.session.commit()
    assert opinions.public_entries(None) == []


def test_no_published_entry_carries_the_corpus_personal_data(app, make_staff):
    """Each corpus text is a citizen's letter and, quoted, the answer; the case's own names
    are those of tests/faq/test_redact.py (KNOWN_NAMES): the citizen 山田 太郎, the consultant
    田中 一郎 who took it, the officer 佐藤 花子 who answered."""
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    taker = Actor(make_staff("consultant", full_name="田中 一郎"), None)
    answerer = Actor(make_staff("supervisor", full_name="佐藤 花子"), None)
    author, reviewer = make_staff("supervisor"), make_staff("supervisor")
    made: list[tuple[dict, int]] = []
    blocked = 0
    for row in rows:
        item = _answered_request(
            taker,
            row["text"],
            f"ご意見ありがとうございました。{row['text']}",
            name="山田 太郎",
            answered_by=answerer,
        )
        entry = opinions.draft_from_request(Actor(author, None), item.id)
        opinions.submit(Actor(author, None), entry)
        try:
            opinions.approve(Actor(reviewer, None), entry)
            made.append((row, entry.id))
        except PublishBlocked:
            blocked += 1
    db.session.commit()
    assert len(made) + blocked == len(rows) and made

    page = app.test_client().get("/opinions").get_data(as_text=True)
    for row, entry_id in made:
        entry = db.session.get(OpinionEntry, entry_id)
        published = (entry.opinion, entry.answer)
        for expected in row["expected"]:
            if expected["kind"] in MUST_FIND or expected.get("known"):
                original = expected["original"]
                assert not any(original in text for text in published), (original, row["text"])
                if expected["kind"] in MUST_FIND:
                    assert original not in page, original
