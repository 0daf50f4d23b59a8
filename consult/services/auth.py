"""Logging in and out: argon2 hashes, throttling, and server-side sessions that really end."""

from __future__ import annotations

import hashlib
import secrets
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from consult.extensions import db
from consult.models import LoginAttempt, Staff, StaffSession
from consult.services import audit, ratelimit
from consult.services.actor import Actor
from consult.services.errors import DomainError
from consult.timeutil import format_tokyo, utcnow

_hasher = PasswordHasher()
_hasher_cost: str | None = None
# A hash to verify against when the login does not exist, so both paths take the same time.
# Made by configure_hasher (create_app), with the cost in use, rather than at import: a hash at
# argon2's defaults is ~0.25 s of CPU, which every process (each CLI command, each worker) paid
# at import and then again in create_app.
_dummy_hash: str | None = None

MIN_PASSWORD_LENGTH = 10
TOUCH_INTERVAL = timedelta(seconds=60)


def configure_hasher(cost: str) -> None:
    """Tests use a cheap hash; production keeps argon2's defaults."""
    global _hasher, _hasher_cost, _dummy_hash
    if cost == _hasher_cost:
        return  # another app in this process (the tests build one per test)
    _hasher = (
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        if cost == "fast"
        else PasswordHasher()
    )
    _hasher_cost = cost
    _dummy_hash = None


def _dummy() -> str:
    """A hash to check an unknown login against, so that it takes as long as a known one.

    Made at the first unknown login, not when the app is built: an argon2 hash is 0.2 s of
    every process's start (each command, each worker), and most never sign anyone in.
    """
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("madoguchi-timing-equaliser")
    return _dummy_hash


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


class LoginSlowDown(DomainError):
    """A wrong password from an address with many recent failures: told to wait, and why."""

    def __init__(self, seconds: int):
        super().__init__(
            "この接続元からのログインの失敗が続いています。"
            f"しばらく待ってから、もう一度お試しください（あと{seconds}秒）。"
        )
        self.seconds = seconds


@dataclass(frozen=True)
class Throttle:
    max_failures: int
    max_failures_per_address: int
    lock: timedelta


LOGIN_SCOPE = "login"
ADDRESS_SCOPE = "login-address"
# The longest wait an address is told to keep between two wrong guesses.
BACKOFF_CAP_SECONDS = 900


def backoff_seconds(failures: int, free: int) -> int:
    """The wait after the address's `failures`-th wrong guess: none up to `free`, then doubling."""
    excess = failures - free
    if excess <= 0:
        return 0
    return min(2 ** min(excess, 20), BACKOFF_CAP_SECONDS)


def authenticate(login: str, password: str, address: str, throttle: Throttle) -> tuple[Staff, str]:
    """Check the password and open a session at once (no second factor asked); returns the
    staff and the new session token. The web's sign-in uses the two steps below instead."""
    staff = check_password(login, password, address, throttle)
    return staff, complete_login(staff, address)


def check_password(login: str, password: str, address: str, throttle: Throttle) -> Staff:
    """The first step of signing in: the password, locally or against the city's directory.

    Per login (existing or not, so the lock tells nothing): the attempt is counted *before* the
    hash is checked, in one atomic upsert, and only the first `max_failures` attempts of a
    window are checked at all; the one that reaches the limit locks the login for `lock`. So
    twenty wrong guesses sent at once through four workers check five, never eight. The count
    is cleared only when the person is fully signed in (complete_login): a right password
    followed by wrong two-factor codes keeps counting toward the same lock.

    Per address (a whole city hall may share one behind its NAT or proxy): never a lock. After
    `max_failures_per_address` wrong guesses in the window each further wrong guess is answered
    429 with a doubling wait. Every attempt on an account that is not itself locked is still
    checked, so the right password always gets in; the hard limit on guessing is the per-login
    lock (the reasoning is in the closing note of issue 14).

    With the directory configured (MADOGUCHI_LDAP_URL), every login but the break-glass ones
    (MADOGUCHI_LDAP_LOCAL_LOGINS) is checked there, and its Staff row synchronised from it.
    """
    from consult.services import directory

    now = utcnow()
    # Lower case: directories match logins without regard to case, and "Admin" must not be a
    # second counter beside "admin".
    login = login.strip()[:64].lower()
    address = (address or "unknown")[:64]
    taken = _count_attempt(login, now, throttle)
    if directory.enabled() and not directory.is_local_login(login):
        try:
            account = directory.lookup(login, password)
        except directory.WrongPassword:
            staff = db.session.scalar(sa.select(Staff).where(Staff.login == login))
            _refuse(staff, login, address, now, taken, throttle, LoginFailed())
        try:
            staff = directory.sync_staff(account, address)
        except (directory.AccountDisabled, directory.NotMapped) as refusal:
            existing = db.session.scalar(sa.select(Staff).where(Staff.login == login))
            _refuse(existing, login, address, now, taken, throttle, refusal)
        if not staff.active:
            _refuse(staff, login, address, now, taken, throttle, LoginFailed())
        return staff
    staff = db.session.scalar(sa.select(Staff).where(Staff.login == login))
    ok = verify_password(staff.password_hash if staff else _dummy(), password)
    if not (ok and staff and staff.active):
        _refuse(staff, login, address, now, taken, throttle, LoginFailed())
    return staff


def _count_attempt(login: str, now: datetime, throttle: Throttle) -> ratelimit.Count:
    """Count one attempt on the login before anything is checked; refuse while it is locked."""
    taken = ratelimit.hit(
        LOGIN_SCOPE,
        login,
        throttle.lock,
        now=now,
        hold_at=throttle.max_failures,
        hold=throttle.lock,
    )
    if taken.hits > throttle.max_failures:
        raise LoginLocked(taken.window_ends)
    return taken


def _refuse(
    staff: Staff | None,
    login: str,
    address: str,
    now: datetime,
    taken: ratelimit.Count,
    throttle: Throttle,
    reason: DomainError,
    action: str = "login_failed",
) -> typing.NoReturn:
    """Record a failed attempt (password or code) and raise what the person is told: the lock
    when this failure reached it, a wait when the address is guessing a lot, else `reason`."""
    db.session.add(LoginAttempt(login=login, address=address, at=now, success=False))
    if staff:
        audit.record(Actor(staff, address), action, "staff", staff.id)
    from_address = ratelimit.hit(ADDRESS_SCOPE, address, throttle.lock, now=now)
    db.session.flush()
    if taken.hits == throttle.max_failures:
        raise LoginLocked(taken.window_ends)
    wait = backoff_seconds(from_address.hits, throttle.max_failures_per_address)
    if wait:
        raise LoginSlowDown(wait)
    raise reason


def check_second_factor(staff_id: int, code: str, address: str, throttle: Throttle) -> str:
    """The second step: a TOTP or recovery code after the right password.

    Every code is counted toward the same per-login lock as passwords (a wrong, reused or
    expired code is a failed attempt), so a stolen password gives `max_failures` guesses at
    the code in all, not per password entry. Returns "totp" or "recovery".
    """
    from consult.services import totp

    now = utcnow()
    address = (address or "unknown")[:64]
    staff = db.session.get(Staff, staff_id)
    if staff is None or not staff.active or not staff.has_totp:
        raise LoginFailed()
    taken = _count_attempt(staff.login, now, throttle)
    try:
        kind = totp.verify(staff, code, now)
    except totp.CodeRefused as refusal:
        _refuse(staff, staff.login, address, now, taken, throttle, refusal, "totp_failed")
    if kind == "recovery":
        audit.record(Actor(staff, address), "totp_recovery", "staff", staff.id)
    return kind


def complete_login(staff: Staff, address: str | None) -> str:
    """Fully signed in: the count is cleared, the attempt recorded, a session opened."""
    address = (address or "unknown")[:64]
    ratelimit.clear(LOGIN_SCOPE, staff.login)
    db.session.add(LoginAttempt(login=staff.login, address=address, at=utcnow(), success=True))
    token = open_session(staff, address)
    audit.record(Actor(staff, address), "login", "staff", staff.id)
    return token


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
    # The staff in the same query (a join): this runs on every signed-in request.
    session = db.session.scalar(
        sa.select(StaffSession)
        .where(StaffSession.token_hash == _digest(token))
        .options(sa.orm.joinedload(StaffSession.staff, innerjoin=True))
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
        _tell_live_pages()


def _tell_live_pages() -> None:
    """Open pages of an ended session say so at once, not at the live channel's next check."""
    from consult.live import services as live

    live.sessions_ended()


def end_all_sessions(staff: Staff, reason: str) -> int:
    now = utcnow()
    result = db.session.execute(
        sa.update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    if result.rowcount:
        _tell_live_pages()
    return result.rowcount or 0


def change_own_password(
    actor: Actor, current: str, new: str, again: str, keep_token: str | None = None
) -> None:
    """A member of staff choosing their own password: the current one proves it is them.

    Clears the administrator's must-change mark. Every other session of theirs ends (a stolen
    cookie stops working); the one in use (`keep_token`) stays signed in."""
    staff = actor.staff
    if staff is None:
        raise DomainError("ログインしてください。")
    if not verify_password(staff.password_hash, current or ""):
        audit.record(actor, "password_change_failed", "staff", staff.id)
        raise DomainError("現在のパスワードが正しくありません。")
    if new != again:
        raise DomainError(
            "新しいパスワードが確認のための入力と一致しません。同じものを2回入力してください。"
        )
    if new == current:
        raise DomainError("新しいパスワードには、現在のパスワードと違うものを設定してください。")
    if new.strip().lower() == staff.login.lower():
        raise DomainError("ログインIDと同じパスワードは設定できません。")
    staff.password_hash = hash_password(new)
    staff.must_change_password = False
    staff.password_changed_at = utcnow()
    query = sa.update(StaffSession).where(
        StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None)
    )
    if keep_token:
        query = query.where(StaffSession.token_hash != _digest(keep_token))
    db.session.execute(query.values(ended_at=utcnow(), end_reason="password_changed"))
    audit.record(actor, "password_change", "staff", staff.id)
