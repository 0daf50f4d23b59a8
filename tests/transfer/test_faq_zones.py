"""The public FAQ on the relay: a read-only copy of what the core publishes, searchable there."""

from __future__ import annotations

import requests

from consult.extensions import db
from consult.services.actor import Actor
from faq import services
from tests.channels.line.conftest import new_staff
from tests.transfer.test_booking_zones import core_round


def test_published_public_entries_are_on_the_relay_and_nothing_else(relay, core):
    author = Actor(new_staff("consultant"), "127.0.0.1")
    approver = Actor(new_staff("supervisor"), "127.0.0.1")

    def publish(question, answer, visibility="public"):
        entry = services.create_entry(
            author, question=question, answer=answer, visibility=visibility
        )
        services.submit(author, entry)
        services.approve(approver, entry)
        db.session.commit()
        return entry

    public = publish("ごみの分別はどうすればよいですか", "市のごみ分別アプリで確認できます。")
    publish("内部手順：システム障害時の連絡先", "情報政策課の内線1234へ。", "staff")
    draft = services.create_entry(
        author, question="下書きの質問", answer="まだ", visibility="public"
    )
    db.session.commit()
    assert draft.id
    core_round()

    page = requests.get(relay.url + "/faq", timeout=10).text
    assert "ごみの分別はどうすればよいですか" in page
    assert "内部手順" not in page and "下書きの質問" not in page
    entry = requests.get(f"{relay.url}/faq/{public.id}", timeout=10)
    assert entry.status_code == 200 and "分別アプリ" in entry.text
    found = requests.get(relay.url + "/faq", params={"q": "ごみ"}, timeout=10).text
    assert "の分別はどうすればよいですか" in found and f"/faq/{public.id}" in found

    # Withdrawn at the core: gone from the relay at the next round.
    from faq.models import FaqEntry, FaqStatus

    db.session.get(FaqEntry, public.id).status = FaqStatus.ARCHIVED
    db.session.commit()
    core_round()
    assert requests.get(f"{relay.url}/faq/{public.id}", timeout=10).status_code == 404
