"""Integrations and their tokens: made and revoked by administrators, checked on every call.

A token reads `mdg_<prefix>_<secret>`: the prefix finds the row, the secret's SHA-256 digest is
compared in constant time. It is shown once, when it is made. Every check of a token is one
read of its row; expiry, revocation and the address allow-list are refused with the same
problem codes the API documents.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from api.models import ApiIntegration, Scope
from consult.extensions import db
from consult.models import Department, Role
from consult.services import audit
from consult.services.actor import Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import single_line
from consult.timeutil import utcnow

TOKEN_PREFIX = "mdg_"  # noqa: S105 (the public start of every token)


class TokenRefused(Exception):
    """A token that cannot be used: `code` is the problem's stable code, `message` Japanese."""

    def __init__(self, code: str, message: str, status: int = 401):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_networks(text: str) -> list[str]:
    """The allow-list as written (one address or CIDR network a line), checked; refused whole."""
    found = []
    for line in (text or "").replace(",", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            found.append(str(ipaddress.ip_network(line, strict=False)))
        except ValueError as exc:
            raise ValidationFailed(
                f"許可するアドレス「{single_line(line)[:50]}」は IP アドレスまたは"
                "ネットワーク（例: 192.0.2.0/24）として読めません。"
            ) from exc
    return found


@dataclass(frozen=True)
class NewToken:
    integration: ApiIntegration
    token: str  # shown once


def create_integration(
    actor: Actor,
    *,
    name: str,
    scopes: list[str],
    allowed_addresses: str = "",
    expires_at: datetime | None = None,
    department_id: int | None = None,
) -> NewToken:
    """A new integration with a new token; the token itself is never stored."""
    staff = actor.require(Role.ADMIN)
    name = single_line(name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("連携名を80文字以内で入力してください。")
    if db.session.scalar(sa.select(ApiIntegration.id).where(ApiIntegration.name == name)):
        raise ValidationFailed("同じ連携名がすでにあります。別の名前にしてください。")
    try:
        chosen = sorted({Scope(value).value for value in scopes})
    except ValueError as exc:
        raise ValidationFailed("権限の範囲は一覧から選んでください。") from exc
    if not chosen:
        raise ValidationFailed("権限の範囲を一つ以上選んでください。")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed("有効期限には未来の日時を指定してください。")
    networks = parse_networks(allowed_addresses)
    if department_id is not None and db.session.get(Department, department_id) is None:
        raise ValidationFailed("担当課は一覧から選んでください。")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    integration = ApiIntegration(
        name=name,
        token_prefix=prefix,
        token_hash=_digest(secret),
        scopes=chosen,
        allowed_addresses="\n".join(networks),
        expires_at=expires_at,
        department_id=department_id,
        created_by=staff,
        created_at=utcnow(),
    )
    db.session.add(integration)
    db.session.flush()
    audit.record(actor, "create", "api_integration", integration.id, detail=",".join(chosen))
    return NewToken(integration, f"{TOKEN_PREFIX}{prefix}_{secret}")


def revoke_integration(actor: Actor, integration_id: int) -> ApiIntegration:
    actor.require(Role.ADMIN)
    integration = db.session.get(ApiIntegration, integration_id)
    if integration is None:
        raise NotFound("連携が見つかりません。")
    if integration.revoked_at is None:
        integration.revoked_at = utcnow()
        audit.record(actor, "deactivate", "api_integration", integration.id)
    return integration


def list_integrations() -> list[ApiIntegration]:
    return list(db.session.scalars(sa.select(ApiIntegration).order_by(ApiIntegration.id)))


def authenticate(token: str | None, address: str | None) -> ApiIntegration:
    """The integration a bearer token names, or TokenRefused with the reason's code."""
    if not token:
        raise TokenRefused(
            "token_missing", "アクセストークンを Authorization ヘッダーで送ってください。"
        )
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] + "_" != TOKEN_PREFIX or not parts[1] or not parts[2]:
        raise TokenRefused("token_invalid", "アクセストークンが正しくありません。")
    integration = db.session.scalar(
        sa.select(ApiIntegration).where(ApiIntegration.token_prefix == parts[1][:16])
    )
    # Compared even when no row was found, so the answer's time says nothing of the prefix.
    expected = integration.token_hash if integration is not None else _digest("-")
    if not hmac.compare_digest(expected, _digest(parts[2])) or integration is None:
        raise TokenRefused("token_invalid", "アクセストークンが正しくありません。")
    now = utcnow()
    if integration.revoked_at is not None:
        raise TokenRefused("token_revoked", "このアクセストークンは無効にされています。")
    if integration.expires_at is not None and integration.expires_at <= now:
        raise TokenRefused("token_expired", "このアクセストークンは有効期限が切れています。")
    if integration.allowed_addresses and not address_allowed(
        integration.allowed_addresses, address
    ):
        raise TokenRefused(
            "address_not_allowed",
            "このアクセストークンは、この接続元アドレスからは使えません。",
            status=403,
        )
    return integration


def address_allowed(networks: str, address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    for line in networks.splitlines():
        try:
            if ip in ipaddress.ip_network(line.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


# The roles whose rules (in the kernel's services) an integration follows, per scope. The API
# checks the scope first; the services then apply the same rules as for staff of that role.
GRANTS = {
    Scope.TICKETS_READ: (Role.CONSULTANT,),
    Scope.TICKETS_WRITE: (Role.CONSULTANT,),
    Scope.PERSONAL: (Role.CONSULTANT,),
    Scope.REPORTS: (Role.SUPERVISOR,),
    Scope.FAQ: (),  # no staff role: the API itself serves published FAQ entries to it
}


# What a token with each scope may read of the personal data, for the 個人情報ファイル簿's
# 利用者の範囲 (consult.services.retention). Keyed by Scope: a scope added without its line here
# fails tests/consult/test_retention.py::test_register_names_every_role_and_every_api_scope.
SCOPE_MAY_SEE = {
    Scope.TICKETS_READ: "相談の件名・状態・分類・担当者・日時と引継ぎの進み具合"
    "（相談者・経過・引継ぎの依頼内容は含まない）",
    Scope.TICKETS_WRITE: "相談・相談者の登録、状態・担当者の変更、メモの追加"
    "（担当課に結び付いたトークンは自課あての引継ぎの操作）",
    Scope.PERSONAL: "相談者の氏名・かな・住所・電話番号・メールアドレス、経過、"
    "引継ぎの依頼内容と対応記録、予約者の氏名（閲覧は監査ログに記録。支援措置の対象者は"
    "住所・連絡先を返さず、照会には該当なしと答える）",
    Scope.REPORTS: "相談件数の統計（個人データを含まない）",
    Scope.FAQ: "公開中のFAQ（個人データを含まない）",
}


def accessors():
    """The API's lines of the 個人情報ファイル簿: one per scope, in the Scope enum's order."""
    from consult import plugins

    return tuple(
        plugins.Accessor(
            f"外部システム連携（APIトークン・範囲「{scope.label}」）", SCOPE_MAY_SEE[scope]
        )
        for scope in Scope
    )


def actor_for(integration: ApiIntegration, address: str | None) -> Actor:
    grants: set[str] = set()
    for scope in integration.scopes or []:
        try:
            grants.update(GRANTS[Scope(scope)])
        except ValueError:
            continue
    if integration.department_id is not None and integration.has(Scope.TICKETS_WRITE):
        grants.add(Role.OFFICER)  # the officer's steps, on its department's handoffs only
    return Actor.for_integration(
        integration.name, address, tuple(sorted(grants)), integration.department_id
    )
