"""Log hygiene: no CR/LF forgery, and no phone numbers, My Numbers or email addresses in logs.

Code logs ids, not values; this record factory is the last line of defence behind that rule.
A database error is the one place where values arrive on their own: the engine hides the
statement's parameters (`hide_parameters=True`, consult/config.py), and the server's own words
about the row (PostgreSQL's "DETAIL: Failing row contains (…)", "Key (name)=(…)") are cut here,
since no pattern could recognise a name, an address or a citizen's free text in them.
"""

from __future__ import annotations

import logging
import re
import traceback
import unicodedata

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\d-])(?:\+81[- ]?|0)\d{1,4}[-‐ー()\s]?\d{1,4}[-‐ー()\s]?\d{3,4}(?![\d-])"
)
_MY_NUMBER = re.compile(r"(?<!\d)\d{4}[ -]?\d{4}[ -]?\d{4}(?!\d)")
_CONTROL = re.compile(r"[\r\n\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
# What a database adds after its one-line message: DETAIL/HINT/… (values of the row), and
# SQLAlchemy's echo of the parameters (hidden by the engine, cut here as well).
_DB_DETAIL = re.compile(r"\s(DETAIL|HINT|CONTEXT|WHERE):.*?(?=\[SQL:|\(Background on|$)", re.S)
_DB_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(\(Background on|$))", re.S)
_QUOTED_VALUE = re.compile(r': "[^"]*"$')
_DB_MODULES = {"sqlalchemy", "psycopg", "psycopg2", "sqlite3"}


def _db_message(text: str) -> str:
    """A database error's message without any value of the row or of the statement."""
    text = _DB_PARAMETERS.sub("[parameters hidden]", _DB_DETAIL.sub("\n", text))
    lines = text.split("\n")
    # The server's own first line may end with the value it refused: 'invalid input …: "…"'.
    lines[0] = _QUOTED_VALUE.sub(": [value]", lines[0])
    return "\n".join(line for line in lines if line.strip())


def _is_db_error(exc_type) -> bool:
    return exc_type is not None and exc_type.__module__.split(".")[0] in _DB_MODULES


def format_exception(exc_info) -> str:
    """A traceback whose database errors (the error and its causes) carry no values."""
    top = traceback.TracebackException(*exc_info)
    seen: set[int] = set()
    pending = [top]
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if _is_db_error(node.exc_type) and isinstance(getattr(node, "_str", None), str):
            node._str = _db_message(node._str)
        pending += [node.__cause__, node.__context__]
    return "".join(top.format()).rstrip("\n")


def scrub(text: str) -> str:
    text = _DB_PARAMETERS.sub("[parameters hidden]", _DB_DETAIL.sub(" ", text))
    text = unicodedata.normalize("NFKC", _CONTROL.sub(" ", text))
    text = _EMAIL.sub("[email]", text)
    text = _MY_NUMBER.sub("[number]", text)
    return _PHONE.sub("[phone]", text)


def _scrub_lines(text: str) -> str:
    """Scrub a multi-line text (a traceback) line by line, keeping its line breaks."""
    return "\n".join(scrub(line) for line in text.split("\n"))


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
            record.exc_text = _scrub_lines(format_exception(record.exc_info))
        if record.stack_info:
            record.stack_info = _scrub_lines(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
