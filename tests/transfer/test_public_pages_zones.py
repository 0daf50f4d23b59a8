"""The public pages added after the split, on the relay: 「寄せられたご意見と回答」 (/opinions)
and the consumer alerts (/alerts) are read-only copies of what the core publishes."""

from __future__ import annotations

import requests
import sqlalchemy as sa

from consult.extensions import db
from consult.services.actor import Actor
from faq.alerts import services as alerts
from faq.opinions import services as opinions
from tests.channels.line.conftest import new_staff
from tests.faq.test_opinions import _answered_request
from tests.transfer.test_booking_zones import core_round


def test_published_opinions_and_alerts_are_on_the_relay_and_nothing_else(relay, core):
    author = Actor(new_staff("supervisor"), "127.0.0.1")
    approver = Actor(new_staff("supervisor"), "127.0.0.1")
    item = _answered_request(
        author,
        "高松一郎です。市道の街灯が暗いので直してほしい。",
        "ご要望ありがとうございました。道路課で現地を確認し、街灯を交換しました。",
    )
    entry = opinions.draft_from_request(author, item.id)
    opinions.submit(author, entry)
    opinions.approve(approver, entry)
    draft_item = _answered_request(author, "下書きのままの要望です。", "まだ公開しない回答。")
    opinions.draft_from_request(author, draft_item.id)

    alert = alerts.create(
        author,
        {
            "title": "還付金詐欺の電話",
            "method": "市役所を名乗り「医療費の還付がある」とATMへ誘導する",
            "advice": "ATMで還付金は受け取れません。すぐに切ってください。",
            "title_en": "Refund fraud calls",
            "advice_en": "No refund is ever paid at an ATM.",
        },
    )
    alerts.submit(author, alert)
    alerts.approve(approver, alert)
    alerts.create(author, {"title": "下書きの注意喚起", "method": "未確定", "advice": "未確定"})
    db.session.commit()
    core_round()

    page = requests.get(relay.url + "/opinions", timeout=10)
    assert page.status_code == 200
    assert "街灯を交換しました" in page.text
    assert "高松一郎" not in page.text and "下書きのまま" not in page.text
    month = requests.get(relay.url + "/opinions", params={"month": entry.month}, timeout=10)
    assert "街灯を交換しました" in month.text

    listed = requests.get(relay.url + "/alerts", timeout=10).text
    assert "還付金詐欺の電話" in listed and "下書きの注意喚起" not in listed
    shown = requests.get(f"{relay.url}/alerts/{alert.id}", timeout=10)
    assert shown.status_code == 200 and "ATMで還付金は受け取れません" in shown.text
    english = requests.get(f"{relay.url}/alerts/{alert.id}", params={"lang": "en"}, timeout=10)
    assert english.status_code == 200 and "No refund is ever paid at an ATM." in english.text

    # Withdrawn and ended at the core: gone from the relay at the next round.
    opinions.withdraw(approver, entry)
    alerts.archive(approver, alert)
    db.session.commit()
    core_round()
    assert "街灯を交換しました" not in requests.get(relay.url + "/opinions", timeout=10).text
    assert requests.get(f"{relay.url}/alerts/{alert.id}", timeout=10).status_code == 404
    # The core, in LGWAN, serves neither page to the internet.
    web = core.test_client()
    assert web.get("/opinions").status_code == 404
    assert web.get("/alerts").status_code == 404


def test_the_satisfaction_question_is_answered_on_the_relay_and_counted_on_the_core(relay, core):
    from consult.models import Channel
    from consult.services import staff as staff_service
    from consult.services import tickets
    from consult.transfer.models import TransferItem
    from consult.transfer.services import outgoing, receive
    from consult.voice import services as voice
    from consult.voice.models import SatisfactionAnswer, SatisfactionInvite
    from tests.transfer.test_zones import count

    actor = Actor(new_staff("consultant"), "127.0.0.1")
    category = staff_service.save_category(None, name="子育て", code="kosodate-z")
    ticket = tickets.create_ticket(actor, channel=Channel.EMAIL, subject="保育園の相談")
    ticket.category_id = category.id
    token = voice.ask(ticket)
    db.session.commit()
    link = f"{relay.url}/voice/satisfaction/{token}"
    # Not on the relay before the core has sent the invite; never on the core.
    assert requests.get(link, timeout=10).status_code == 410
    assert core.test_client().get(f"/voice/satisfaction/{token}").status_code == 404
    core_round()

    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "保育園" not in page.text  # nothing of the case
    bad = requests.post(link, data={"score": "9"}, timeout=10, allow_redirects=False)
    assert bad.status_code == 422
    answered = requests.post(
        link, data={"score": "4", "comment": "丁寧でした"}, timeout=10, allow_redirects=False
    )
    assert answered.status_code == 302
    assert requests.post(link, data={"score": "1"}, timeout=10).status_code == 410
    with relay.context():
        assert count(SatisfactionAnswer) == 0 and count(SatisfactionInvite) == 0
        assert count(TransferItem) == 1
        batch = outgoing(100)
        db.session.commit()

    core_round()
    db.session.expire_all()
    [row] = db.session.scalars(sa.select(SatisfactionAnswer)).all()
    assert (row.score, row.comment, row.category_id, row.channel) == (
        4,
        "丁寧でした",
        category.id,
        "email",
    )
    assert count(SatisfactionInvite) == 0  # the core's invite is used up: a reprint offers none
    assert voice.ask(ticket, again=True) is None
    with relay.context():
        assert count(TransferItem) == 0
    # The same answer again (a replayed batch): still one.
    receive(batch)
    db.session.commit()
    assert count(SatisfactionAnswer) == 1
