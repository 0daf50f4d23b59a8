"""Personal data in FAQ text: the names the case itself knows, and what the redactor finds."""

from __future__ import annotations

from consult.models import Ticket
from faq.models import FaqEntry
from faq.settings import FaqSettings


def configured_public_phones() -> list[str]:
    """The centre's own published numbers (not personal data); none outside an app."""
    try:
        return list(FaqSettings.current().public_phones)
    except RuntimeError:
        return []


def names_in_case(entry: FaqEntry | None = None, ticket: Ticket | None = None) -> list[str]:
    """Names the case itself knows: the citizen, and every member of staff on it."""
    tickets = [ticket] if ticket else [s.ticket for s in (entry.sources if entry else [])]
    names: list[str] = []
    for item in tickets:
        if item.citizen:
            names += [item.citizen.name or "", item.citizen.kana or ""]
        people = [item.assignee, item.created_by] + [e.author for e in item.timeline]
        for person in people:
            if person is not None:
                names += [person.full_name, person.display_name.split("/")[0].strip()]
    return [n for n in dict.fromkeys(names) if n]


def redact_text(text: str, known_names: list[str]):
    from faq.redact import redact

    return redact(text, known_names=known_names, public_phones=configured_public_phones())


def remaining_personal_data(entry: FaqEntry) -> list:
    """What the redactor still finds in the entry's question, answer and keywords."""
    names = names_in_case(entry)
    spans = []
    for text in (entry.question, entry.answer, entry.keywords):
        spans += list(redact_text(text or "", names).spans)
    return spans
