"""``GET /api/openapi.json``: the OpenAPI 3 document, generated from the router.

Generated rather than hand-written so it cannot drift: every route is listed with
its method, path parameters, summary and description (the handler's docstring),
its access rule (public, or the roles it needs) and whatever extra detail the
handler declares with :func:`hotline.web.access.api_doc`.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web

from hotline import __version__
from hotline.web.access import DOC_ATTR, PUBLIC, access_rule, public
from hotline.web.util import json_response

_PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
            "required": ["code", "message"],
        }
    },
}


def _unwrap(handler: Any) -> Any:
    while hasattr(handler, "__wrapped__"):
        handler = handler.__wrapped__
    return handler


def _operation(method: str, path: str, handler: Any) -> dict[str, Any]:
    real = _unwrap(handler)
    doc = inspect.getdoc(real) or ""
    summary, _, description = doc.partition("\n")
    rule = access_rule(handler)
    extra: dict[str, Any] = getattr(real, DOC_ATTR, None) or getattr(handler, DOC_ATTR, None) or {}
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "summary": summary.strip(),
        "tags": extra.get("tags") or [path.split("/")[3] if path.startswith("/api/v1/") else "operations"],
        "responses": {},
    }
    if description.strip():
        op["description"] = description.strip()
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM_RE.findall(path)
    ]
    for name, schema in (extra.get("query") or {}).items():
        schema = dict(schema)
        desc = schema.pop("description", None)
        required = bool(schema.pop("required", False))
        param = {"name": name, "in": "query", "required": required, "schema": schema}
        if desc:
            param["description"] = desc
        params.append(param)
    if params:
        op["parameters"] = params
    if extra.get("body"):
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": extra["body"]}}}
    for status, spec in (extra.get("responses") or {200: "OK"}).items():
        if isinstance(spec, str):
            spec = {"description": spec}
        entry: dict[str, Any] = {"description": spec.get("description", "")}
        if "schema" in spec:
            entry["content"] = {spec.get("content_type", "application/json"): {"schema": spec["schema"]}}
        op["responses"][str(status)] = entry
    if rule == PUBLIC:
        op["security"] = []
    else:
        roles = sorted(rule or [])
        op["x-roles"] = roles or ["any signed-in user"]
        op["responses"].setdefault("401", {"description": "not signed in", "content": {"application/json": {"schema": _ERROR_SCHEMA}}})
        op["responses"].setdefault("403", {"description": "role not allowed or CSRF token missing", "content": {"application/json": {"schema": _ERROR_SCHEMA}}})
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        op["responses"].setdefault("400", {"description": "invalid input (names the field)", "content": {"application/json": {"schema": _ERROR_SCHEMA}}})
    return op


def build_spec(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        resource = route.resource
        if resource is None or isinstance(resource, web.StaticResource) or route.method in ("HEAD", "*"):
            continue
        path = _PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", resource.canonical)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.method, path, route.handler)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hotline — 12345 政务服务便民热线 backend API",
            "version": __version__,
            "description": "Tickets, calls, knowledge base, ingest and console APIs. "
            "Browser clients authenticate with the session cookie from POST /api/v1/auth/login "
            "and send the X-CSRF-Token header on every state-changing request.",
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "hotline_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
            "schemas": {"Error": _ERROR_SCHEMA},
        },
        "security": [{"session": [], "csrf": []}],
        "paths": dict(sorted(paths.items())),
    }


@public  # the API description is not secret; it says which roles each route needs
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3 description of every route."""
    return json_response(build_spec(request.app))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
