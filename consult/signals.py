"""Every signal of madoguchi, declared once, with its sender and arguments.

Services send these inside their transaction, after flushing; a receiver that writes rows writes
them in the same transaction (the reports' rollup), one that acts outside the database queues
that work in the outbox. Plugins connect receivers through `Plugin.receivers`, so a receiver
runs only for the apps that installed its plugin (see consult.plugins); the kernel's own
receivers connect directly.

As indico's `core/signals/`: one module, so anyone can see what can be listened to.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

ticket_created = _signals.signal(
    "ticket-created",
    doc="""A ticket was created. Sender: the Ticket. Arguments: `actor` (Actor or None).""",
)

ticket_status_changed = _signals.signal(
    "ticket-status-changed",
    doc="""A ticket's status changed. Sender: the Ticket. Arguments: `actor`, `old` and `new`
    (Status).""",
)

ticket_closed = _signals.signal(
    "ticket-closed",
    doc="""A ticket was closed (完了). Sender: the Ticket. Arguments: `actor`.""",
)

ticket_category_changed = _signals.signal(
    "ticket-category-changed",
    doc="""A ticket's category changed. Sender: the Ticket. Arguments: `old` and `new` category
    ids (int or None), sent inside the transaction that changes it.""",
)

ticket_session_ended = _signals.signal(
    "ticket-session-ended",
    doc="""A counter or phone session ended (its duration is known). Sender: the Ticket.
    Arguments: `actor`.""",
)

message_received = _signals.signal(
    "message-received",
    doc="""A citizen's own message arrived on a ticket (never an automatic reply). Sender: the
    Ticket. Arguments: `text` (str) and `at` (aware datetime). The FAQ's automatic answer listens.
    """,
)

mail_queued = _signals.signal(
    "mail-queued",
    doc="""A mail was put in the outbox. Sender: the OutboxMessage. Arguments: `ticket` (Ticket or
    None). The email channel remembers its Message-ID for threading.""",
)

handoff_changed = _signals.signal(
    "handoff-changed",
    doc="""A handoff was created or moved on (accepted, on the way, arrived, done, returned,
    cancelled, given more information). Sender: the Handoff. No arguments.""",
)

timeline_entry_added = _signals.signal(
    "timeline-entry-added",
    doc="""An entry was appended to a ticket's timeline (a message, a note, a status change, an
    assignment, a handoff step…). Sender: the Ticket. Arguments: `entry` (TimelineEntry, maybe
    not flushed yet). The live channel tells the pages showing that ticket.""",
)

help_alert_changed = _signals.signal(
    "help-alert-changed",
    doc="""A help alert (応援要請) was raised, answered (向かいます／到着) or closed. Sender: the
    HelpAlert. Arguments: `action` ("raised", "escalated", "coming", "arrived", "closed").""",
)

visit_place_asked = _signals.signal(
    "visit-place-asked",
    doc="""Where is the visit in progress of this ticket? (the help alert's place; the kernel
    does not know channels' visits). Sender: the Ticket. Arguments: `found` (a list a receiver
    appends a room number (int) to, when the ticket has a visit in progress in that room).""",
)

long_session_alerted = _signals.signal(
    "long-session-alerted",
    doc="""A counter or phone session passed a long-session threshold. Sender: the Ticket.
    Arguments: `minutes` (int).""",
)

counter_visit_moved = _signals.signal(
    "counter-visit-moved",
    doc="""A walk-in's visit was called to a room, seated or finished. Sender: the CounterVisit.
    Arguments: `action` ("call", "serve", "finish"). The lobby display hears of calls.""",
)

citizen_request_marked = _signals.signal(
    "citizen-request-marked",
    doc="""A ticket was registered as a request to the city or a letter to the mayor
    (consult.voice). Sender: the CitizenRequest. No arguments. The handoff package names the
    responsible department when the case was already handed to one.""",
)

citizen_request_answered = _signals.signal(
    "citizen-request-answered",
    doc="""The written answer (文書回答) of a request to the city or a letter to the mayor was
    recorded (consult.voice). Sender: the CitizenRequest. Arguments: `actor` (who recorded it).
    The handoff package completes the live 文書回答 handoff of the case to that department when
    its officer answered, as the officer's 対応記録 on the handoff page would.""",
)

consumer_alert_published = _signals.signal(
    "consumer-alert-published",
    doc="""A consumer or fraud alert (注意喚起, faq.alerts) was approved and published. Sender:
    the alert's id (int). Arguments: `title` and `text` (the alert as citizens may read it:
    redacted and approved, no personal data), `url` (its public page). LINE prepares a notice
    to the citizens who chose consumer alerts; a member of staff sends it after seeing the
    quota.""",
)
