"""Out of hours, a citizen's message that clearly matches a public FAQ entry gets its link.

Only when the kernel's automatic-answer policy allows it (consult.services.auto_answer: the
centre is closed, at most once per ticket), only for a strong match, on the channel the citizen
used (the channel registers a sender in consult's registry), and marked on the timeline as an
automatic answer. It never holds up the message:
any failure is logged and the message is kept as it arrived.
"""

from __future__ import annotations

import logging
from datetime import datetime

from consult import plugins
from consult.extensions import db
from consult.models import Ticket
from consult.services import auto_answer
from consult.timeline import Automatic
from consult.urls import public_url
from faq.analysis import morph_terms
from faq.settings import FaqSettings

log = logging.getLogger("madoguchi.faq")

# How much of the entry's question the message must mention, and how far ahead of the runner-up
# the best entry must be, for a match to count as strong.
MIN_COVERAGE = 0.7
MIN_SHARED_TERMS = 2
MIN_LEAD = 1.3
GENERIC = {
    "知る",
    "教える",
    "下さる",
    "くださる",
    "する",
    "ある",
    "いる",
    "なる",
    "できる",
    "出来る",
    "思う",
    "分かる",
    "わかる",
    "いただく",
    "頂く",
    "欲しい",
    "ほしい",
    "良い",
    "いい",
    "方",
    "こと",
    "もの",
    "ため",
    "よう",
    "とき",
    "時",
}


def _terms(text: str) -> set[str]:
    return {term for term, _, _ in morph_terms(text)}


def strong_match(text: str):
    """The public entry the message is clearly about, or None."""
    from faq import services

    hits = services.search(text[:1000], public=True, limit=2)
    if not hits:
        return None
    best = hits[0]
    if len(hits) > 1 and best.score < MIN_LEAD * hits[1].score:
        return None
    # What the entry's question is about, without the verbs every question has (知りたい, 教えて).
    wanted = _terms(best.entry.question) - GENERIC
    said = _terms(text)
    shared = wanted & said
    if not wanted or len(shared) < min(MIN_SHARED_TERMS, len(wanted)):
        return None
    if len(shared) < MIN_COVERAGE * len(wanted):
        return None
    return best.entry


def on_message(ticket: Ticket, *, text: str, at: datetime, **_ignored) -> None:
    if not FaqSettings.current().auto_answer:
        return
    sender = plugins.registry().automatic_sender(ticket.channel.value)
    if sender is None or not auto_answer.may_answer_automatically(ticket, Automatic.FAQ, at):
        return
    try:
        with db.session.begin_nested():
            entry = strong_match(text)
            if entry is None:
                return
            url = public_url("faq_public.public_entry", entry_id=entry.id)
            body = (
                "ご相談の内容に近い「よくある質問」があります。\n"
                f"「{entry.question}」\n{url}\n\n"
                "このメッセージは受付時間外に自動でお送りしています。"
                "相談員からも受付時間内にお返事します。"
            )
            sender(ticket, body, automatic=Automatic.FAQ, faq_entry_id=entry.id)
    except Exception:
        # The citizen's message is already recorded; only the automatic answer is skipped.
        log.exception("automatic FAQ answer skipped for ticket %s", ticket.id)
