"""Polling an IMAP mailbox by UID: a message is marked handled only after its ticket committed.

Order per group of messages: fetch each with BODY.PEEK[] (the server does not mark it read),
store the raw bytes (fsync, one commit for the group's rows) and process them (one commit per
batch, a message that fails quarantined alone), then move or flag each on the server, then record
the UID. A crash anywhere in between fetches the message again next time; its Message-ID is
already stored, so it makes no second entry. UIDVALIDITY changing means the UIDs were
renumbered: start again from the beginning, and let deduplication skip what was already taken.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
from dataclasses import dataclass

from channels.email import services, tasks
from channels.email.models import ImapState, InboundStatus, MailPollStatus
from consult.extensions import db
from consult.services import mail
from consult.timeutil import utcnow

log = logging.getLogger("madoguchi.email.imap")
HANDLED_FLAG = "$MadoguchiHandled"


class ImapError(Exception):
    """The mailbox could not be read (connection, login, folder); nothing was marked."""


@dataclass
class FetchReport:
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0


def _connect(config: dict) -> imaplib.IMAP4:
    host, port = config["IMAP_HOST"], int(config["IMAP_PORT"])
    security = config["IMAP_SECURITY"]
    # The same verification as outgoing mail: MADOGUCHI_MAIL_CA_FILE or the system's store.
    if security == "ssl":
        return imaplib.IMAP4_SSL(host, port, ssl_context=mail.tls_context(), timeout=30)
    connection = imaplib.IMAP4(host, port, timeout=30)
    if security == "starttls":
        try:
            connection.starttls(ssl_context=mail.tls_context())
        except Exception:
            with contextlib.suppress(OSError):
                connection.shutdown()  # a refused certificate must not leave the socket open
            raise
    return connection


def _check(result: tuple, what: str) -> list:
    status, data = result
    if status != "OK":
        raise ImapError(f"IMAPサーバーが{what}を受け付けませんでした。")
    return data


def fetch_once(limit: int = 500) -> FetchReport:
    config = services.settings()
    if not config["IMAP_HOST"]:
        raise ImapError("受信サーバー（MADOGUCHI_IMAP_HOST）が設定されていません。")
    report = FetchReport()
    try:
        connection = _connect(config)
    except ssl.SSLError as exc:
        # Before login and before any database work: nothing read, nothing marked, retried later.
        raise ImapError(mail.tls_problem("IMAP", exc) + "。") from exc
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"IMAPサーバーに接続できません（{type(exc).__name__}）。") from exc
    try:
        try:
            connection.login(config["IMAP_USER"], config["IMAP_PASSWORD"])
        except imaplib.IMAP4.error as exc:
            raise ImapError("IMAPサーバーにログインできません（利用者名・パスワード）。") from exc
        folder = config["IMAP_FOLDER"]
        _check(connection.select(f'"{folder}"'), "フォルダーの選択")
        _name, values = connection.response("UIDVALIDITY")
        if not values or values[-1] is None:
            raise ImapError("IMAPサーバーがUIDVALIDITYを返しませんでした。")
        uidvalidity = int(values[-1])
        key = f"{config['IMAP_USER']}@{config['IMAP_HOST']}:{config['IMAP_PORT']}/{folder}"[:255]
        state = db.session.get(ImapState, key)
        if state is None or state.uidvalidity != uidvalidity:
            state = state or ImapState(mailbox=key)
            state.uidvalidity, state.last_uid = uidvalidity, 0
            db.session.add(state)
            db.session.commit()
        last = state.last_uid
        data = _check(connection.uid("SEARCH", None, f"UID {last + 1}:*"), "検索")
        # UID SEARCH n:* always answers the highest UID, even one below n: skip what we saw.
        uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > last)[:limit]
        for start in range(0, len(uids), tasks.BATCH_SIZE):
            group = uids[start : start + tasks.BATCH_SIZE]
            fetched_uids, raws = [], []
            for uid in group:
                fetched = _check(connection.uid("FETCH", str(uid), "(BODY.PEEK[])"), "取得")
                raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
                if raw is not None:
                    fetched_uids.append(uid)
                    raws.append(raw)
            # Stored with one commit, processed with one commit per batch (see tasks).
            outcomes = tasks.ingest_many(raws, source="imap") if raws else []
            for uid, outcome in zip(fetched_uids, outcomes, strict=True):
                if outcome.duplicate:
                    report.duplicates += 1
                elif outcome.inbound.status == InboundStatus.QUARANTINED:
                    report.quarantined += 1
                else:
                    report.ingested += 1
                _mark_handled(connection, uid, config["IMAP_DONE_FOLDER"])
            state = db.session.get(ImapState, key)
            state.last_uid = group[-1]
            db.session.commit()
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            connection.logout()
    return report


POLL_SOURCE = "imap"


def poll(limit: int = 500) -> FetchReport:
    """One poll, as `madoguchi mail fetch` runs it: its outcome is recorded for the
    administrators' page (/email/inbound). What was taken before a failure stays taken."""
    try:
        report = fetch_once(limit)
    except ImapError as error:
        _record(str(error))
        raise
    except (OSError, imaplib.IMAP4.error) as exc:  # the connection dropped in the middle
        error = ImapError(f"IMAPサーバーとの通信が途中で切れました（{type(exc).__name__}）。")
        _record(str(error))
        raise error from exc
    _record(None)
    return report


def _record(error: str | None) -> None:
    db.session.rollback()
    now = utcnow()
    status = db.session.get(MailPollStatus, POLL_SOURCE)
    if status is None:
        status = MailPollStatus(source=POLL_SOURCE, failures_in_row=0)
        db.session.add(status)
    status.last_attempt_at = now
    if error is None:
        status.last_success_at, status.failures_in_row = now, 0
    else:
        status.last_error, status.last_error_at = error[:500], now
        status.failures_in_row = (status.failures_in_row or 0) + 1
    db.session.commit()


def poll_status() -> MailPollStatus | None:
    return db.session.get(MailPollStatus, POLL_SOURCE)


def _mark_handled(connection: imaplib.IMAP4, uid: int, done_folder: str) -> None:
    if done_folder:
        capabilities = connection.capabilities or ()
        if "MOVE" in capabilities:
            _check(connection.uid("MOVE", str(uid), f'"{done_folder}"'), "移動")
            return
        _check(connection.uid("COPY", str(uid), f'"{done_folder}"'), "コピー")
        _check(connection.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)"), "削除フラグ")
        connection.expunge()
        return
    _check(connection.uid("STORE", str(uid), "+FLAGS", f"(\\Seen {HANDLED_FLAG})"), "フラグ")
