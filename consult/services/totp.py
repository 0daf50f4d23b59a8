"""Two-factor sign-in: TOTP codes from an authenticator app (RFC 6238) and recovery codes.

Why these rules:
- The secret is stored encrypted (Fernet; the key is MADOGUCHI_TOTP_KEY or derived from the
  app's secret key), shown only while the person enrols, and never logged.
- A code is accepted for its 30-second step and one step either side (clocks drift). Each
  accepted step is remembered in one conditional UPDATE (`totp_last_step < step`), so the same
  code sent twice, even by two requests at once, gets in once: the second is told it was used.
- A code from a few minutes ago is told apart from a wrong one ("expired"), so a person whose
  phone clock is wrong, or who copied an old code, knows what to do.
- Ten recovery codes, each usable once (again one conditional UPDATE), stored as SHA-256
  digests (they are random and long, so a plain digest is enough), shown once at enrolment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import typing
import unicodedata
from datetime import datetime

import pyotp
import segno
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from consult.config import CoreSettings, TwoFactorSettings
from consult.extensions import db
from consult.models import RecoveryCode, Role, Staff
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import DomainError, ValidationFailed
from consult.timeutil import utcnow

STEP_SECONDS = 30
# Steps either side of now that are accepted (a phone clock 30 s off still works).
WINDOW = 1
# Older steps than the window, up to this many, are recognised as an expired code.
EXPIRED_STEPS = 10
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_LENGTH = 10
PRIVILEGED = (Role.ADMIN, Role.SUPERVISOR)
_DIGITS = re.compile(r"\d{6}")


class CodeRefused(DomainError):
    """A code that does not let the person in; `kind` is wrong, reused, expired or used."""

    MESSAGES: typing.ClassVar[dict[str, str]] = {
        "wrong": "確認コードが正しくありません。認証アプリに表示されている6桁の数字を"
        "入力してください。",
        "reused": "この確認コードは既に使われています。認証アプリに次のコードが表示されるまで"
        "待ってから、新しいコードを入力してください。",
        "expired": "この確認コードは有効期限が切れています。認証アプリに表示されている最新の"
        "コードを入力してください（スマートフォンの時刻が正しいかもご確認ください）。",
        "used": "このリカバリーコードは既に使われています。まだ使っていない別のリカバリーコードを"
        "入力してください。",
        "empty": "確認コードを入力してください。",
    }

    def __init__(self, kind: str):
        super().__init__(self.MESSAGES[kind])
        self.kind = kind


# --- policy -------------------------------------------------------------------------------


def is_required(staff: Staff) -> bool:
    """Whether this person must have two-factor sign-in, under MADOGUCHI_TOTP_REQUIRED."""
    required = TwoFactorSettings.current().required
    return required == "all" or (required == "privileged" and staff.role in PRIVILEGED)


def needs_enrolment(staff: Staff) -> bool:
    """Required but not yet set up: the person may do nothing but enrol (or sign out)."""
    return not staff.has_totp and is_required(staff)


# --- the secret ---------------------------------------------------------------------------


def _fernet() -> Fernet:
    key = TwoFactorSettings.current().key or CoreSettings.current().secret_key
    digest = hashlib.sha256(b"madoguchi-totp-secret\0" + key.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode("ascii")).decode("ascii")


def _decrypt(stored: str) -> str:
    try:
        return _fernet().decrypt(stored.encode("ascii")).decode("ascii")
    except InvalidToken:
        # The key changed (MADOGUCHI_TOTP_KEY or the secret key): the person must enrol again,
        # through an administrator's reset.
        raise DomainError(
            "二要素認証の設定を読み取れません（暗号鍵が変更された可能性があります）。"
            "管理者に二要素認証のリセットを依頼してください。"
        ) from None


def begin_enrolment(staff: Staff) -> str:
    """The secret to show while enrolling: made once, kept (encrypted) until confirmed."""
    if staff.has_totp:
        raise ValidationFailed("二要素認証は既に設定されています。")
    if staff.totp_secret:
        return _decrypt(staff.totp_secret)
    secret = pyotp.random_base32()  # 32 characters: 160 bits, as RFC 4226 recommends
    staff.totp_secret = _encrypt(secret)
    return secret


def issuer() -> str:
    return TwoFactorSettings.current().issuer or CoreSettings.current().centre_name


def provisioning_uri(staff: Staff, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=staff.login, issuer_name=issuer())


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (the page's CSP allows data: images;
    no outside service ever sees the secret)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4)


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- codes --------------------------------------------------------------------------------


def _normalise(code: str) -> str:
    """Full-width digits, spaces and hyphens as people type them: '１２３ ４５６' → '123456'."""
    text = unicodedata.normalize("NFKC", code or "")
    return re.sub(r"[\s\-ー－]", "", text).lower()[:64]


def _step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def _matching_step(secret: str, code: str, now: datetime) -> tuple[int | None, bool]:
    """(the step the code belongs to within the window, whether it matches an older step)."""
    totp = pyotp.TOTP(secret)
    current = _step(now)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    if found is not None:
        return found, False
    expired = any(
        hmac.compare_digest(totp.generate_otp(step), code)
        for step in range(current - WINDOW - EXPIRED_STEPS, current - WINDOW)
    )
    return None, expired


def _take_step(staff: Staff, step: int) -> bool:
    """Remember `step` as used, unless it (or a later one) already was: one atomic UPDATE."""
    result = db.session.execute(
        sa.update(Staff)
        .where(
            Staff.id == staff.id,
            sa.or_(Staff.totp_last_step.is_(None), Staff.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        staff.totp_last_step = step
        return True
    return False


def check_totp(staff: Staff, code: str, now: datetime | None = None) -> int:
    """Accept a TOTP code once; the accepted step, or CodeRefused saying why not."""
    now = now or utcnow()
    code = _normalise(code)
    if not code:
        raise CodeRefused("empty")
    if not _DIGITS.fullmatch(code) or not staff.totp_secret:
        raise CodeRefused("wrong")
    step, expired = _matching_step(_decrypt(staff.totp_secret), code, now)
    if step is None:
        raise CodeRefused("expired" if expired else "wrong")
    if not _take_step(staff, step):
        raise CodeRefused("reused")
    return step


def verify(staff: Staff, code: str, now: datetime | None = None) -> str:
    """The second factor at sign-in: a TOTP code or a recovery code. Returns which it was."""
    now = now or utcnow()
    text = _normalise(code)
    if len(text) == RECOVERY_LENGTH and not text.isdigit():
        use_recovery_code(staff, text, now)
        return "recovery"
    check_totp(staff, code, now)
    return "totp"


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii", "replace")).hexdigest()


def use_recovery_code(staff: Staff, code: str, now: datetime | None = None) -> None:
    code = _normalise(code)
    digest = _digest(code)
    result = db.session.execute(
        sa.update(RecoveryCode)
        .where(
            RecoveryCode.staff_id == staff.id,
            RecoveryCode.code_hash == digest,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return
    used = db.session.scalar(
        sa.select(RecoveryCode.id).where(
            RecoveryCode.staff_id == staff.id, RecoveryCode.code_hash == digest
        )
    )
    raise CodeRefused("used" if used else "wrong")


def remaining_recovery_codes(staff: Staff) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(RecoveryCode.id)).where(
                RecoveryCode.staff_id == staff.id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


def _new_recovery_codes(staff: Staff) -> list[str]:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.staff_id == staff.id))
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    db.session.add_all(RecoveryCode(staff_id=staff.id, code_hash=_digest(c)) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


# --- enrolment and reset ------------------------------------------------------------------


def confirm_enrolment(actor: Actor, staff: Staff, code: str) -> list[str]:
    """The first code proves the app holds the secret; returns the recovery codes (shown once)."""
    if staff.has_totp:
        raise ValidationFailed("二要素認証は既に設定されています。")
    if not staff.totp_secret:
        raise ValidationFailed(
            "設定の途中で情報が失われました。もう一度最初からやり直してください。"
        )
    check_totp(staff, code)
    staff.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(staff)
    audit.record(actor, "totp_enrol", "staff", staff.id)
    return codes


def reset(actor: Actor, staff: Staff) -> None:
    """An administrator clears a person's two-factor sign-in (a lost phone): they enrol again
    at their next sign-in where it is required, and their open sessions end now."""
    from consult.services import auth

    actor.require(Role.ADMIN)
    staff.totp_secret = None
    staff.totp_enabled_at = None
    staff.totp_last_step = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.staff_id == staff.id))
    auth.end_all_sessions(staff, "totp_reset")
    audit.record(actor, "totp_reset", "staff", staff.id)
