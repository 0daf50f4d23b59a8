"""管理 → API連携: an administrator makes a token (shown once, kept hashed), revokes it, and
registers a webhook whose delivery log shows each attempt."""

from __future__ import annotations

import re

import sqlalchemy as sa

from api.models import ApiIntegration, ApiWebhook
from consult.extensions import db
from tests.helpers import csrf_token_from, sign_in


def _admin_client(app, make_staff):
    app.config["WTF_CSRF_ENABLED"] = True
    return sign_in(app, make_staff("admin"), csrf=True)


def test_a_token_is_shown_once_and_works(app, make_staff):
    client = _admin_client(app, make_staff)
    page = client.get("/admin/api/").get_data(as_text=True)
    assert "アクセストークンを作る" in page
    # Without the CSRF token: refused, nothing made.
    refused = client.post("/admin/api/integrations", data={"i-name": "BI", "i-scopes": "reports"})
    assert refused.status_code == 400
    assert not db.session.scalars(sa.select(ApiIntegration)).all()
    made = client.post(
        "/admin/api/integrations",
        data={
            "csrf_token": csrf_token_from(page),
            "i-name": "市のBI",
            "i-scopes": ["reports", "tickets:read"],
            "i-allowed_addresses": "127.0.0.1",
            "i-expires_on": "2099-03-31",
        },
    )
    html = made.get_data(as_text=True)
    assert made.status_code == 200, html[:2000]
    assert "このトークンはこの画面でしか表示されません" in html
    token = re.search(r"(mdg_[0-9a-f]+_[\w-]+)", html).group(1)
    row = db.session.scalars(sa.select(ApiIntegration)).one()
    assert row.scopes == ["reports", "tickets:read"] and row.allowed_addresses == "127.0.0.1/32"
    assert token.split("_", 2)[2] not in (row.token_hash + row.token_prefix)
    again = client.get("/admin/api/").get_data(as_text=True)
    assert token not in again and "市のBI" in again and "2099/03/31" in again
    api = app.test_client()
    assert (
        api.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    client.post(
        f"/admin/api/integrations/{row.id}/revoke", data={"csrf_token": csrf_token_from(again)}
    )
    answer = api.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert answer.get_json()["code"] == "token_revoked"


def test_bad_input_is_told_in_japanese_and_changes_nothing(app, make_staff):
    client = _admin_client(app, make_staff)
    page = client.get("/admin/api/").get_data(as_text=True)
    answer = client.post(
        "/admin/api/integrations",
        data={
            "csrf_token": csrf_token_from(page),
            "i-name": "連携",
            "i-scopes": "tickets:read",
            "i-allowed_addresses": "どこでも",
        },
    )
    assert answer.status_code == 422
    assert "IP アドレスまたはネットワーク" in answer.get_data(as_text=True)
    answer = client.post(
        "/admin/api/integrations",
        data={"csrf_token": csrf_token_from(page), "i-name": "連携"},
    )
    assert "権限の範囲を一つ以上選んでください" in answer.get_data(as_text=True)
    answer = client.post(
        "/admin/api/webhooks",
        data={
            "csrf_token": csrf_token_from(page),
            "w-name": "フック",
            "w-url": "ftp://example.lg.jp/",
            "w-events": "ticket.created",
        },
    )
    assert "http:// または https://" in answer.get_data(as_text=True)
    assert not db.session.scalars(sa.select(ApiIntegration)).all()
    assert not db.session.scalars(sa.select(ApiWebhook)).all()


def test_webhook_registered_and_its_delivery_log(app, make_staff, make_ticket):
    from tests.api.test_webhooks import Receiver, deliver

    receiver = Receiver()
    try:
        client = _admin_client(app, make_staff)
        page = client.get("/admin/api/").get_data(as_text=True)
        made = client.post(
            "/admin/api/webhooks",
            data={
                "csrf_token": csrf_token_from(page),
                "w-name": "福祉システム",
                "w-url": receiver.url,
                "w-events": ["ticket.created"],
            },
        )
        html = made.get_data(as_text=True)
        assert "署名用シークレット" in html
        receiver.plan = [500]
        make_ticket()
        deliver(app)
        log = client.get("/admin/api/").get_data(as_text=True)
        assert "送信待ち（HTTP 500）" in log and "→ 500" in log
    finally:
        receiver.close()
