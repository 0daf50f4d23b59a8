"""Log hygiene: no CR/LF forgery, and no phone numbers, My Numbers or email addresses in logs.

Code logs ids, not values; this record factory is the last line of defence behind that rule.
"""

from __future__ import annotations

import logging
import re
import unicodedata

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\d-])(?:\+81[- ]?|0)\d{1,4}[-‐ー()\s]?\d{1,4}[-‐ー()\s]?\d{3,4}(?![\d-])"
)
_MY_NUMBER = re.compile(r"(?<!\d)\d{4}[ -]?\d{4}[ -]?\d{4}(?!\d)")
_CONTROL = re.compile(r"[\r\n\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


def scrub(text: str) -> str:
    text = unicodedata.normalize("NFKC", _CONTROL.sub(" ", text))
    text = _EMAIL.sub("[email]", text)
    text = _MY_NUMBER.sub("[number]", text)
    return _PHONE.sub("[phone]", text)


def _scrub_lines(text: str) -> str:
    """Scrub a multi-line text (a traceback) line by line, keeping its line breaks."""
    return "\n".join(scrub(line) for line in text.split("\n"))


_formatter = logging.Formatter()
_installed = False


def install_log_filter() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            return record
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # A traceback carries the exception's own message (a mail server's refusal names the
        # recipient): format it now, scrubbed, so handlers use this text instead of exc_info's.
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = _scrub_lines(_formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = _scrub_lines(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
