"""The relay's end of the link: three signed endpoints the core calls (the relay calls none).

Registered only when MADOGUCHI_ROLE=relay. No session, no CSRF token: a request is
authenticated by its signature alone (consult.transfer.signing), and refused (401, nothing
changed) when it is unsigned, wrongly signed, stale or replayed.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, request

from consult.extensions import db
from consult.transfer import services, signing
from consult.web import BODY_LIMIT_ATTR, public

log = logging.getLogger("madoguchi.transfer")

bp = Blueprint("relay", __name__, url_prefix="/relay/v1")

MAX_BODY = 16 * 1024 * 1024


def _signed(handler):
    body = request.get_data(cache=False)
    config = services.settings()
    try:
        nonce = signing.verify_request(
            config.key,
            request.method,
            request.path,
            request.headers,
            body,
            config.max_skew_seconds,
        )
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError
    except signing.Refused as exc:
        db.session.rollback()
        log.warning("transfer request refused: %s", exc)
        return Response(b'{"message":"refused"}', 401, content_type="application/json")
    except ValueError:
        db.session.rollback()
        return Response(b'{"message":"not JSON"}', 400, content_type="application/json")
    result, after = handler(data)
    db.session.commit()
    if after:
        after()
    answer = json.dumps(result, ensure_ascii=False, default=str).encode()
    response = Response(answer, 200, content_type="application/json")
    response.headers[signing.SIGNATURE] = signing.response_signature(config.key, nonce, answer)
    return response


def _limit():
    return MAX_BODY


@bp.route("/pull", methods=["POST"])
@public
def pull():
    def handler(data):
        try:
            limit = max(1, min(int(data.get("limit", 100)), 1000))
        except (TypeError, ValueError):
            limit = 100
        return {"items": services.outgoing(limit)}, None

    return _signed(handler)


@bp.route("/ack", methods=["POST"])
@public
def ack():
    def handler(data):
        ids = data.get("ids")
        if not isinstance(ids, list):
            ids = []
        return {"deleted": services.acknowledge(ids)}, None

    return _signed(handler)


@bp.route("/push", methods=["POST"])
@public
def push():
    def handler(data):
        items = data.get("items")
        received = services.receive(items if isinstance(items, list) else [])
        app = current_app._get_current_object()
        names = set(received.kinds)
        return {"accepted": received.accepted}, (
            (lambda: services.after_apply(app, names)) if names else None
        )

    return _signed(handler)


for _view in (pull, ack, push):
    setattr(_view, BODY_LIMIT_ATTR, _limit)
