"""Handoffs: the rules of the centre's promise that the department comes to the citizen.

States: 依頼中 → 受付済 → 向かっています → 到着 → 対応済, or 差し戻し (with a reason; counts as a
bounce) from any open state, or 取消 by the centre. Every change is a timeline entry on the
ticket. An officer sees and acts only on handoffs to their own department; an external body acts
through a signed, expiring, revocable link.

One module per concern; this package offers their public names as one `services`:
`common` (state machine, timeline entry, business-time rules), `access` (who sees and acts),
`centre` (hand on, add information, cancel, links), `officer` (the department's steps),
`external` (an external body's link and steps), `queries` (inbox and lists), `escalation`,
`figures` (the supervisor's overview), `city_requests` and `demo`. Services flush; the view,
command or worker task that called them commits. Mail texts are in handoff.notifications.
"""

from handoff.services.access import contact_for, get, require_officer
from handoff.services.centre import (
    Request,
    accept_deadline,
    add_information,
    cancel,
    create,
    default_due,
    duty_department_today,
    handoff_targets,
    reissue_link,
    revoke_links,
)
from handoff.services.city_requests import (
    complete_answered_request_handoff,
    name_marked_request_department,
    name_request_department,
)
from handoff.services.common import (
    ACCEPT_MINUTES,
    CONTACT_RESPONSES,
    DUE_MINUTES,
    MAX_ETA_MINUTES,
    MAX_RECORD,
    MAX_SUMMARY,
    TRANSITIONS,
)
from handoff.services.demo import seed_demo
from handoff.services.escalation import escalate_due
from handoff.services.external import (
    LinkRefused,
    decline_external,
    external_contact,
    finish_external,
    issue_link,
    open_link,
    read_link,
)
from handoff.services.figures import (
    DepartmentFigures,
    department_figures,
    overdue_now,
    overview,
)
from handoff.services.officer import Record, accept, arrive, decline, finish, on_the_way
from handoff.services.queries import (
    INBOX_TABS,
    WhereToGo,
    case_records,
    citizen_expectation,
    for_ticket,
    inbox,
    inbox_counts,
    live_states,
    where_to_go,
)

__all__ = [
    "ACCEPT_MINUTES",
    "CONTACT_RESPONSES",
    "DUE_MINUTES",
    "INBOX_TABS",
    "MAX_ETA_MINUTES",
    "MAX_RECORD",
    "MAX_SUMMARY",
    "TRANSITIONS",
    "DepartmentFigures",
    "LinkRefused",
    "Record",
    "Request",
    "WhereToGo",
    "accept",
    "accept_deadline",
    "add_information",
    "arrive",
    "cancel",
    "case_records",
    "citizen_expectation",
    "complete_answered_request_handoff",
    "contact_for",
    "create",
    "decline",
    "decline_external",
    "default_due",
    "department_figures",
    "duty_department_today",
    "escalate_due",
    "external_contact",
    "finish",
    "finish_external",
    "for_ticket",
    "get",
    "handoff_targets",
    "inbox",
    "inbox_counts",
    "issue_link",
    "live_states",
    "name_marked_request_department",
    "name_request_department",
    "on_the_way",
    "open_link",
    "overdue_now",
    "overview",
    "read_link",
    "reissue_link",
    "require_officer",
    "revoke_links",
    "seed_demo",
    "where_to_go",
]
