"""Logging in and out: argon2 hashes, throttling, and server-side sessions that really end."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from consult.extensions import db
from consult.models import LoginAttempt, Staff, StaffSession
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import DomainError
from consult.timeutil import format_tokyo, utcnow

_hasher = PasswordHasher()
# A hash to verify against when the login does not exist, so both paths take the same time.
_DUMMY_HASH = _hasher.hash("madoguchi-timing-equaliser")

MIN_PASSWORD_LENGTH = 10
TOUCH_INTERVAL = timedelta(seconds=60)


def configure_hasher(cost: str) -> None:
    """Tests use a cheap hash; production keeps argon2's defaults."""
    global _hasher, _DUMMY_HASH
    _hasher = (
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        if cost == "fast"
        else PasswordHasher()
    )
    _DUMMY_HASH = _hasher.hash("madoguchi-timing-equaliser")


def hash_password(password: str) -> str:
    check_password_strength(password)
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。")
    if len(password) > 256:
        raise DomainError("パスワードは256文字以内にしてください。")


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class LoginLocked(DomainError):
    def __init__(self, until: datetime):
        super().__init__(
            "ログインに続けて失敗したため、一時的にロックされています。"
            f"{format_tokyo(until)} 以降にもう一度お試しください。"
        )
        self.until = until


class LoginFailed(DomainError):
    def __init__(self) -> None:
        super().__init__("ログインIDまたはパスワードが正しくありません。")


@dataclass(frozen=True)
class Throttle:
    max_failures: int
    max_failures_per_address: int
    lock: timedelta


def _lock_until(column, value: str, limit: int, lock: timedelta, now: datetime) -> datetime | None:
    """When ``limit`` failures for this login/address fell in the lock window, the lock's end."""
    since = now - lock
    last_success = db.session.scalar(
        sa.select(sa.func.max(LoginAttempt.at)).where(
            column == value, LoginAttempt.success.is_(True), LoginAttempt.at >= since
        )
    )
    floor = max(since, last_success) if last_success else since
    failures = list(
        db.session.scalars(
            sa.select(LoginAttempt.at)
            .where(column == value, LoginAttempt.success.is_(False), LoginAttempt.at > floor)
            .order_by(LoginAttempt.at.desc())
            .limit(limit)
        )
    )
    if len(failures) >= limit:
        return failures[0] + lock
    return None


def check_throttle(login: str, address: str, throttle: Throttle, now: datetime) -> None:
    for column, value, limit in (
        (LoginAttempt.login, login, throttle.max_failures),
        (LoginAttempt.address, address, throttle.max_failures_per_address),
    ):
        until = _lock_until(column, value, limit, throttle.lock, now)
        if until and until > now:
            raise LoginLocked(until)


def authenticate(login: str, password: str, address: str, throttle: Throttle) -> tuple[Staff, str]:
    """Check the password and open a session; returns the staff and the new session token.

    The lock is per login (existing or not, so it tells nothing) and per client address.
    """
    now = utcnow()
    login = login.strip()[:64]
    address = (address or "unknown")[:64]
    check_throttle(login, address, throttle, now)
    staff = db.session.scalar(sa.select(Staff).where(Staff.login == login))
    ok = verify_password(staff.password_hash if staff else _DUMMY_HASH, password)
    if not (ok and staff and staff.active):
        db.session.add(LoginAttempt(login=login, address=address, at=now, success=False))
        if staff:
            audit.record(Actor(staff, address), "login_failed", "staff", staff.id)
        db.session.flush()
        check_throttle(login, address, throttle, now)
        raise LoginFailed()
    db.session.add(LoginAttempt(login=login, address=address, at=now, success=True))
    token = open_session(staff, address)
    audit.record(Actor(staff, address), "login", "staff", staff.id)
    return staff, token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def open_session(staff: Staff, address: str | None) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(token_hash=_digest(token), staff_id=staff.id, address=(address or "")[:64])
    )
    staff.session_token = token
    return token


def load_session(
    token: str, idle: timedelta, absolute: timedelta, touch: bool = True
) -> Staff | None:
    """The staff of a live session, or None when it ended, idled out or is too old.

    `touch=False` for requests a page makes by itself (the live stream): they are not the
    user's activity and must not keep the session from idling out."""
    if not token or len(token) > 100:
        return None
    session = db.session.scalar(
        sa.select(StaffSession).where(StaffSession.token_hash == _digest(token))
    )
    if session is None or session.ended_at is not None:
        return None
    now = utcnow()
    staff = session.staff
    if not staff.active:
        return None
    if now - session.last_seen_at > idle:
        _end(session, "idle", now)
        return None
    if now - session.created_at > absolute:
        _end(session, "expired", now)
        return None
    if touch and now - session.last_seen_at > TOUCH_INTERVAL:
        session.last_seen_at = now
    staff.session_token = token
    return staff


def _end(session: StaffSession, reason: str, now: datetime) -> None:
    session.ended_at = now
    session.end_reason = reason


def end_session(token: str, actor: Actor) -> None:
    session = db.session.scalar(
        sa.select(StaffSession).where(StaffSession.token_hash == _digest(token))
    )
    if session and session.ended_at is None:
        _end(session, "logout", utcnow())
        audit.record(actor, "logout", "staff", session.staff_id)


def end_all_sessions(staff: Staff, reason: str) -> int:
    now = utcnow()
    result = db.session.execute(
        sa.update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return result.rowcount or 0
