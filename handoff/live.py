"""What the live channel says when a handoff moves: ids, states and labels, no personal data.

The officers of the handoff's department and the desk receive it; nobody else.
"""

from __future__ import annotations

from consult.live import services as live


def handoff_changed(handoff, **_):
    live.publish(
        "handoff",
        [f"department:{handoff.department_id}", "desk"],
        {
            "handoff_id": handoff.id,
            "ticket_id": handoff.ticket_id,
            "number": handoff.ticket.number,
            "department_id": handoff.department_id,
            "state": handoff.state.value,
            "state_label": handoff.state_label,
            "urgent": handoff.urgency.value == "urgent",
        },
    )
