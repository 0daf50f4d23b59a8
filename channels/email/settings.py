"""The email channel's settings section: limits on inbound mail and the IMAP mailbox."""

from __future__ import annotations

from dataclasses import dataclass

from consult.settings import Section, choice, secret


@dataclass(frozen=True)
class EmailSettings(Section):
    mail_max_message_bytes: int = 25 * 2**20
    mail_max_attachment_bytes: int = 10 * 2**20
    mail_max_parts: int = 100
    mail_auto_ack: bool = False
    mail_ack_answer_days: int = 3
    imap_host: str = ""
    imap_port: int = 993
    # none only for 127.0.0.1 tests
    imap_security: str = choice("ssl", "ssl", "starttls", "none")
    imap_user: str = ""
    imap_password: str = secret()
    imap_folder: str = "INBOX"
    imap_done_folder: str = ""  # empty: flag handled mail instead of moving it
