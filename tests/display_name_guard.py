"""A guard over every test: no citizen-facing outbox message names a member of staff in full.

Citizens see staff only by their display name (surname in hiragana and romaji; Iwamizawa's
name-badge rule). Any test, in any package, that writes an outbox row is checked as the row is
inserted: if its recipient is not internal (a department's address, the centre's alert
addresses, or a message marked X-Madoguchi-Internal) and its subject, body or sender name
contains the full name of any member of staff, the flush fails and so does the test.
New channels (email replies, LINE, booking confirmations) are covered without listing them.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from consult.models import CentreSetting, Department, OutboxMessage, Staff


class FullNameLeak(AssertionError):
    pass


def _internal(connection, message: OutboxMessage) -> bool:
    extra = (message.headers or {}).get("extra") or {}
    if "X-Madoguchi-Internal" in extra:
        return True
    recipient = (message.recipient or "").lower()
    departments = connection.execute(
        sa.select(Department.email).where(Department.email.is_not(None))
    )
    if recipient in {row[0].lower() for row in departments}:
        return True
    staff_addresses = connection.execute(sa.select(Staff.email).where(Staff.email.is_not(None)))
    if recipient in {row[0].lower() for row in staff_addresses}:
        return True  # a colleague's work address (escalations, alerts)
    alert_to = connection.execute(
        sa.select(CentreSetting.value).where(CentreSetting.key == "alert_mail_to")
    ).scalar()
    from consult.services.safety import SETTINGS

    addresses = (alert_to or SETTINGS["alert_mail_to"].default).lower().split(",")
    return recipient in {a.strip() for a in addresses}


def check_message(connection, message: OutboxMessage) -> None:
    if _internal(connection, message):
        return
    text = " ".join(
        str(part or "")
        for part in (
            message.subject,
            message.body,
            (message.headers or {}).get("sender_name"),
        )
    )
    folded = text.replace(" ", "").replace("\u3000", "")
    for full_name, display_name in connection.execute(
        sa.select(Staff.full_name, Staff.display_name)
    ):
        compact = full_name.replace(" ", "").replace("\u3000", "")
        if full_name in text or (len(compact) >= 2 and compact in folded):
            raise FullNameLeak(
                f"an outbox message to a citizen names staff in full ({full_name!r}); "
                f"use the display name ({display_name!r})"
            )


def _before_insert(mapper, connection, target) -> None:
    check_message(connection, target)


@pytest.fixture(autouse=True)
def display_name_guard():
    event.listen(OutboxMessage, "before_insert", _before_insert)
    yield
    event.remove(OutboxMessage, "before_insert", _before_insert)
