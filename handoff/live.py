"""What the live channel says when a handoff moves: ids, states and labels, no personal data.

The officers of the handoff's department and the desk receive it; nobody else.
"""

from __future__ import annotations

from consult.live import services as live


def handoff_changed(handoff, **_):
    # 来庁して対応: where to go. The room, the reception number and the consultant's display
    # name (表示名) are staff-facing labels, not the citizen's data; never the citizen's name.
    place = {}
    if handoff.response.value == "visit":
        from handoff import services

        found = services.where_to_go([handoff]).get(handoff.id)
        if found is not None:
            place = {
                "room": found.room,
                "reception_number": found.reception_number,
                "consultant": found.consultant,
            }
    live.publish(
        "handoff",
        [f"department:{handoff.department_id}", "desk"],
        {
            **place,
            "handoff_id": handoff.id,
            "ticket_id": handoff.ticket_id,
            "number": handoff.ticket.number,
            "department_id": handoff.department_id,
            "state": handoff.state.value,
            "state_label": handoff.state_label,
            "urgent": handoff.urgency.value == "urgent",
        },
    )
