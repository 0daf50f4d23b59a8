"""The supervisor's figures on the phone: calls, and whether the recording notice was played.

Minato and Iwamizawa record calls after an announcement (録音のお知らせ); a call where it was
not played is a call whose recording the centre may not lean on, so the supervisor counts them.
"""

from __future__ import annotations

import sqlalchemy as sa

from channels.phone.models import PhoneCall
from consult.extensions import db
from consult.models import Ticket


def recording_counts(start_utc, end_utc) -> dict[bool, int]:
    """Phone tickets opened in the period, by whether the announcement was played."""
    rows = db.session.execute(
        sa.select(PhoneCall.recording_announced, sa.func.count(PhoneCall.id))
        .join(Ticket, Ticket.id == PhoneCall.ticket_id)
        .where(Ticket.created_at >= start_utc, Ticket.created_at < end_utc)
        .group_by(PhoneCall.recording_announced)
    )
    counts = {True: 0, False: 0}
    for announced, count in rows:
        counts[bool(announced)] = count
    return counts


def section(period):
    counts = recording_counts(period.start_utc, period.end_utc)
    total = counts[True] + counts[False]
    if not total:
        return None
    return "phone/report_section.html", {
        "total": total,
        "announced": counts[True],
        "not_announced": counts[False],
        "share": round(100 * counts[True] / total),
    }
