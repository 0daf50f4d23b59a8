"""The API's description: the OpenAPI document (flask-smorest) and a readable page of our own.

The page is rendered on the server from the same document, with no script and nothing from a
CDN (the LGWAN zone reaches no CDN, and the CSP allows only our own files).
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from api.models import Scope

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")

METHODS = ("get", "post", "put", "patch", "delete")


def _schema_name(ref_holder: dict | None) -> str:
    if not ref_holder:
        return ""
    ref = ref_holder.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else ref_holder.get("type", "")


@bp.get("/docs")
def page():
    spec = current_app.extensions["madoguchi_api"].spec.to_dict()
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not operation:
                continue
            body = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            responses = []
            for status, answer in operation.get("responses", {}).items():
                content = (answer.get("content") or {}).values()
                schema = next(iter(content), {}).get("schema") if content else None
                responses.append((status, answer.get("description", ""), _schema_name(schema)))
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "secured": bool(operation.get("security")),
                    "parameters": operation.get("parameters", []),
                    "body": _schema_name(body.get("schema")) if body else "",
                    "responses": responses,
                }
            )
    schemas = spec.get("components", {}).get("schemas", {})
    return render_template(
        "api/docs.html",
        spec=spec,
        operations=operations,
        schemas=schemas,
        scopes=Scope,
    )
