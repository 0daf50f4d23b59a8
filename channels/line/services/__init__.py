"""LINE intake and delivery: store the webhook first, process its events later, answer by outbox.

The webhook only verifies the signature and stores the raw body (one INSERT); the processor
expands each stored body into one row per event (unique on ``webhookEventId``), turns events
into tickets and timeline entries, one chat at a time in LINE's order, and retries what failed.
Replies leave through the outbox, whose LINE deliverer pushes with a fixed ``X-Line-Retry-Key``
per message (or uses a still-valid reply token).

LINE user ids are personal data: they live in ``line_contact`` and in the stored webhook bodies
only; logs, outbox recipients and URLs carry the contact's row id instead.

The rooms: `webhook` (signature, stored bodies as events), `events` (processing),
`contacts`, `outgoing` (replies and automatic answers), `linking`, `satisfaction`, `media`,
`panel`. They flush; the worker jobs that commit are in channels.line.tasks. The names other
packages use are re-exported here.
"""

from channels.line.services.common import CHANNEL, MAX_TEXT, MEDIA_KINDS, settings
from channels.line.services.contacts import contact_ticket_ids
from channels.line.services.events import EVENTS
from channels.line.services.linking import issue_link_code, link_contact
from channels.line.services.media import MEDIA, media_dir
from channels.line.services.outgoing import send_automatic, send_reply, sender_line
from channels.line.services.panel import PanelData, panel_data
from channels.line.services.satisfaction import ask_satisfaction
from channels.line.services.webhook import InvalidSignature, verify, warm_up

__all__ = [
    "CHANNEL",
    "EVENTS",
    "MAX_TEXT",
    "MEDIA",
    "MEDIA_KINDS",
    "InvalidSignature",
    "PanelData",
    "ask_satisfaction",
    "contact_ticket_ids",
    "issue_link_code",
    "link_contact",
    "media_dir",
    "panel_data",
    "send_automatic",
    "send_reply",
    "sender_line",
    "settings",
    "verify",
    "warm_up",
]
