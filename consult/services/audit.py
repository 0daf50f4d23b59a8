"""The audit log: every staff view or change of personal data. Rows are never edited."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent
from consult.services.actor import Actor
from consult.services.normalize import single_line

ACTION_LABELS = {
    "view": "閲覧",
    "search": "検索",
    "export": "出力",
    "create": "登録",
    "update": "変更",
    "login": "ログイン",
    "logout": "ログアウト",
    "login_failed": "ログイン失敗",
    "deactivate": "利用停止",
    "password_reset": "パスワード再設定",
    "merge": "統合",
    "unmerge": "統合の取消",
    "totp_enrol": "二要素認証の設定",
    "totp_reset": "二要素認証のリセット",
    "totp_failed": "確認コードの誤り",
    "totp_recovery": "リカバリーコードでのログイン",
    "release": "隔離の解除",
    "approve": "承認",
    "hold_back": "廃棄の保留",
    "hold_back_undo": "保留の取消",
    "legal_hold": "訴訟ホールドの設定",
    "legal_hold_lift": "訴訟ホールドの解除",
    "expire": "保持期限切れの削除",
}

OBJECT_LABELS = {
    "ticket": "相談",
    "citizen": "相談者",
    "staff": "職員",
    "audit": "監査ログ",
    "department": "担当課",
    "category": "分類",
    "queue": "処理に失敗したもの",
    "safe_file": "市民から受け取ったファイル",
    "disposal_list": "廃棄予定一覧",
    "relay_hold": "中継サーバーの一時保管",
}


def record(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object = None,
    detail: str | None = None,
) -> AuditEvent:
    """Add an audit row. ``detail`` must never carry personal data (it names fields, not values)."""
    event = AuditEvent(
        staff_id=actor.staff_id,
        integration=actor.integration[:80] if actor.integration else None,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        address=single_line(actor.address)[:64] if actor.address else None,
        detail=single_line(detail)[:200] if detail else None,
    )
    db.session.add(event)
    return event


def search_events(
    *,
    staff_id: int | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if staff_id:
        query = query.where(AuditEvent.staff_id == staff_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    return list(db.session.scalars(query))
