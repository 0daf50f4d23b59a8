"""RFC 9457 problem details for every error of the API, in Japanese, each with a stable code.

The API's blueprint answers its own errors here (the kernel's HTML error pages stay for the
rest of the app): an HTTP error, a domain error of a service (the same refusal the web shows as
a flashed message), a refused token, or a request that did not validate (with its fields).
"""

from __future__ import annotations

import logging
import re

from flask import Response, json
from werkzeug.exceptions import HTTPException, default_exceptions

from consult.extensions import db
from consult.services.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    TicketClosed,
    ValidationFailed,
)

log = logging.getLogger("madoguchi.api")

MEDIA_TYPE = "application/problem+json"

# Default code and Japanese title per status.
STATUS_TEXT = {
    400: ("bad_request", "リクエストを読み取れません。"),
    401: ("unauthorized", "認証が必要です。"),
    403: ("forbidden", "この操作を行う権限がありません。"),
    404: ("not_found", "見つかりません。"),
    405: ("method_not_allowed", "この操作には対応していません。"),
    406: ("not_acceptable", "指定された形式では応答できません。"),
    409: ("conflict", "ほかの操作と競合しました。"),
    413: ("too_large", "リクエストが大きすぎます。"),
    415: ("unsupported_media_type", "本文は JSON（application/json）で送ってください。"),
    422: ("validation_failed", "入力内容に誤りがあります。"),
    429: ("rate_limited", "リクエストが多すぎます。しばらく待ってからやり直してください。"),
    500: ("server_error", "サーバーでエラーが発生しました。"),
}


class Problem(HTTPException):
    """Raised by the API's views: becomes a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict] | None = None,
        headers: dict | None = None,
    ):
        super().__init__(detail)
        self.code = status
        self.problem_code = code
        self.detail = detail
        self.errors = errors
        self.extra_headers = headers or {}


def response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict] | None = None,
    headers: dict | None = None,
) -> Response:
    title = STATUS_TEXT.get(status, ("error", "エラーが発生しました。"))[1]
    body = {
        "type": f"https://madoguchi.invalid/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    result = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        result.headers[name] = value
    return result


# marshmallow's and webargs' messages, in Japanese; anything else gets the generic text.
_MESSAGES = [
    (re.compile(r"^Missing data for required field"), "必須の項目です。"),
    (re.compile(r"^Field may not be null"), "空（null）にはできません。"),
    (re.compile(r"^Not a valid integer"), "整数で指定してください。"),
    (re.compile(r"^Not a valid string"), "文字列で指定してください。"),
    (re.compile(r"^Not a valid boolean"), "true か false で指定してください。"),
    (re.compile(r"^Not a valid (datetime|date)"), "日時の形式（ISO 8601）で指定してください。"),
    (re.compile(r"^Must be one of: (.*)\.$"), "次のいずれかを指定してください: {0}"),
    (re.compile(r"^Unknown field"), "この項目は受け付けていません。"),
    (re.compile(r"^Shorter than minimum length (\d+)"), "{0}文字以上で入力してください。"),
    (re.compile(r"^Longer than maximum length (\d+)"), "{0}文字以内で入力してください。"),
    (re.compile(r"^Length must be between (\d+) and (\d+)"), "{0}〜{1}文字で入力してください。"),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\."),
        "{0}以上{1}以下で指定してください。",
    ),
    (re.compile(r"^Must be greater than or equal to (\S+)\."), "{0}以上で指定してください。"),
    (re.compile(r"^Must be less than or equal to (\S+)\."), "{0}以下で指定してください。"),
    (re.compile(r"^Invalid input type"), "JSON のオブジェクトで送ってください。"),
    (re.compile(r"^Invalid value"), "値が正しくありません。"),
]


def japanese(message: str) -> str:
    if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", message):
        return message  # ours already
    for pattern, text in _MESSAGES:
        match = pattern.match(message)
        if match:
            return text.format(*match.groups())
    return "値が正しくありません。"


def field_errors(messages: dict) -> list[dict]:
    """webargs' {location: {field: [messages] | nested}} as a flat list of fields."""
    found: list[dict] = []

    def walk(prefix: str, value, location: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                name = f"{prefix}.{key}" if prefix else str(key)
                walk(name, inner, location)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            for message in value:
                found.append(
                    {"field": prefix or "_body", "in": location, "message": japanese(message)}
                )
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(f"{prefix}[{index}]", inner, location)
        else:
            found.append(
                {"field": prefix or "_body", "in": location, "message": japanese(str(value))}
            )

    for location, fields in (messages or {}).items():
        walk("", fields, {"json": "body", "query": "query"}.get(location, location))
    return found


DOMAIN_STATUS = [
    (NotFound, 404, "not_found"),
    (PermissionDenied, 403, "forbidden"),
    (TicketClosed, 409, "ticket_closed"),
    (InvalidTransition, 409, "invalid_transition"),
    (ValidationFailed, 422, "validation_failed"),
    (DomainError, 422, "refused"),
]


def install(blueprint) -> None:
    """Answer every error raised under `blueprint` with a problem document."""

    def http_error(error: HTTPException):
        db.session.rollback()
        if isinstance(error, Problem):
            return response(
                error.code,
                error.problem_code,
                error.detail,
                errors=error.errors,
                headers=error.extra_headers,
            )
        status = error.code or 500
        code, title = STATUS_TEXT.get(status, ("error", "エラーが発生しました。"))
        errors = None
        if status in (400, 422) and getattr(error, "data", None):
            errors = field_errors(error.data.get("messages") or {})
            if errors:
                status, code, title = 422, "validation_failed", STATUS_TEXT[422][1]
        return response(
            status,
            code,
            title,
            errors=errors,
            headers=dict(error.get_headers()) if status == 405 else None,
        )

    def domain_error(error: DomainError):
        db.session.rollback()
        for cls, status, code in DOMAIN_STATUS:
            if isinstance(error, cls):
                return response(status, code, error.message)
        return response(422, "refused", error.message)  # pragma: no cover

    def server_error(error):
        try:
            db.session.rollback()
        except Exception:
            log.warning("rollback after an API error failed", exc_info=True)
        return response(500, "server_error", STATUS_TEXT[500][1])

    for status in default_exceptions:
        if status >= 400 and status != 500:
            blueprint.register_error_handler(status, http_error)
    blueprint.register_error_handler(Problem, http_error)
    blueprint.register_error_handler(DomainError, domain_error)
    blueprint.register_error_handler(500, server_error)
