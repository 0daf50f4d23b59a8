"""The email channel's rules: store first, then process; thread replies; answer; quarantine.

The order matters for never losing mail: `tasks.store_raw` writes the bytes under DATA_DIR and
a row keyed by Message-ID, sender and content (a second delivery of the same mail finds the row
and stops; another mail reusing the Message-ID is a row of its own), and commits; only then
does `tasks.process` parse and put the mail on a ticket, in a transaction of its own. A failure
there rolls back the ticket work and records the reason on the row (quarantine), so a process
killed at any point leaves a pending or quarantined row that the next run handles once.

The bulk path (`tasks.ingest_many`, `tasks.process_batch`: IMAP fetch, `mail process`, the
worker) keeps that order per group: all raw files fsynced, their rows stored and committed,
then the group processed in one transaction; `mail ingest` stays one message at a time.

The rooms: `storage` (raw files and rows), `processing` (a mail onto a ticket), `bounces`,
`outgoing` (mail to citizens), `staff` (saved replies, inbound list, panel). They flush; the
jobs that commit (store, ingest, process) are in channels.email.tasks. The names other
packages use are re-exported here.
"""

from channels.email.services.common import MAX_REPLY, on_relay, settings
from channels.email.services.outgoing import (
    ask_satisfaction,
    recipient_for,
    remember_outgoing,
    send_ack,
    send_automatic,
    send_reply,
)
from channels.email.services.processing import INBOUND, Quarantine
from channels.email.services.staff import (
    imap_state,
    list_inbound,
    list_templates,
    proposed_sender,
    register_proposed_citizen,
    retry,
    save_template,
    ticket_panel,
)
from channels.email.services.storage import raw_path, read_raw

__all__ = [
    "INBOUND",
    "MAX_REPLY",
    "Quarantine",
    "ask_satisfaction",
    "imap_state",
    "list_inbound",
    "list_templates",
    "on_relay",
    "proposed_sender",
    "raw_path",
    "read_raw",
    "recipient_for",
    "register_proposed_citizen",
    "remember_outgoing",
    "retry",
    "save_template",
    "send_ack",
    "send_automatic",
    "send_reply",
    "settings",
    "ticket_panel",
]
