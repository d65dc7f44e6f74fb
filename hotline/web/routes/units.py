"""Handling units (承办单位) with their liaisons, and the dispatch catalogue
(category → default lead unit)."""

from __future__ import annotations

from aiohttp import web

from hotline.auth import audit
from hotline.db import transaction
from hotline.errors import NotFound, ValidationError
from hotline.tickets.catalogue import list_catalogue, list_units, save_unit, set_catalogue
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import query_bool
from hotline.web.util import json_response, read_json

UNIT_BODY = {"type": "object", "properties": {
    "code": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}, "name": {"type": "string"},
    "parent_code": {"type": ["string", "null"]}, "contact_phone": {"type": "string"},
    "kind": {"enum": ["department", "district", "street", "enterprise", "centre", "other"]},
    "region_code": {"type": ["string", "null"], "description": "the region (GB/T 2260) the unit answers for"},
    "active": {"type": "boolean"}}}


@requires()
@api_doc(tags=["units"], query={"all": {"type": "boolean", "description": "include inactive units"}},
         responses={200: "units with their liaisons' user ids"})
async def units(request: web.Request) -> web.Response:
    """List handling units (承办单位) with their liaisons."""
    items = await list_units(request.app[RUNTIME].pool, include_inactive=query_bool(request, "all"))
    return json_response({"items": items})


@requires("admin", "supervisor")
@api_doc(tags=["units"], body=UNIT_BODY, responses={201: "created", 409: "code exists"})
async def unit_create(request: web.Request) -> web.Response:
    """Add a handling unit (e.g. a street office 街道 or a utility)."""
    body = await read_json(request)
    code = body.pop("code", None)
    if not isinstance(code, str):
        raise ValidationError(f"请填写单位代码 code，收到 {code!r}", field="code", value=code, code="missing_field")
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        unit = await save_unit(conn, code, body, create=True)
        await audit(conn, "unit_created", user=current_user(request), object_type="unit", object_id=code)
    return json_response({"unit": unit}, status=201)


@requires("admin", "supervisor")
@api_doc(tags=["units"], body=UNIT_BODY, responses={200: "updated", 404: "no such unit"})
async def unit_update(request: web.Request) -> web.Response:
    """Rename, re-parent, (de)activate a unit or change its contact phone."""
    body = await read_json(request)
    code = request.match_info["code"]
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        unit = await save_unit(conn, code, body, create=False)
        await audit(conn, "unit_updated", user=current_user(request), object_type="unit", object_id=code,
                    detail={"changed": sorted(body)})
    return json_response({"unit": unit})


@requires("admin", "supervisor", "dispatcher")
@api_doc(tags=["units"], responses={200: "the unit's liaisons"})
async def liaisons(request: web.Request) -> web.Response:
    """The liaisons (联络员) of a unit: users with the liaison role and this unit."""
    code = request.match_info["code"]
    pool = request.app[RUNTIME].pool
    if not await pool.fetchval("SELECT true FROM units WHERE code = $1", code):
        raise NotFound(f"没有单位 {code!r}", field="code", value=code)
    rows = await pool.fetch(
        "SELECT id, username, display_name, active FROM users WHERE unit_code = $1 AND 'liaison' = ANY(roles) "
        "ORDER BY username", code)
    return json_response({"items": [dict(r) for r in rows]})


@requires()
@api_doc(tags=["units"], responses={200: "category → default lead unit"})
async def catalogue(request: web.Request) -> web.Response:
    """The dispatch catalogue (派单目录): each category's default lead unit."""
    return json_response({"items": await list_catalogue(request.app[RUNTIME].pool)})


@requires("admin", "supervisor", "dispatcher")
@api_doc(tags=["units"], body={"type": "object", "required": ["unit_code"], "properties": {
    "unit_code": {"type": ["string", "null"], "description": "null removes the entry"},
    "note": {"type": "string"}}}, responses={200: "the entry", 400: "unknown unit", 404: "unknown category"})
async def catalogue_set(request: web.Request) -> web.Response:
    """Set (or with `unit_code: null` remove) a category's default lead unit."""
    body = await read_json(request)
    if "unit_code" not in body:
        raise ValidationError("请填写单位代码 unit_code（null 表示取消）", field="unit_code", code="missing_field")
    user = current_user(request)
    category = request.match_info["category"]
    async with transaction(request.app[RUNTIME].pool) as conn:  # the audit row commits with the change
        entry = await set_catalogue(conn, category, body["unit_code"], user_id=user.id,
                                    note=str(body.get("note") or ""))
        await audit(conn, "catalogue_changed", user=user, object_type="category", object_id=category,
                    detail={"unit_code": body["unit_code"]})
    return json_response({"entry": entry})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/units", units)
    app.router.add_post("/api/v1/units", unit_create)
    app.router.add_patch("/api/v1/units/{code}", unit_update)
    app.router.add_get("/api/v1/units/{code}/liaisons", liaisons)
    app.router.add_get("/api/v1/dispatch-catalogue", catalogue)
    app.router.add_put("/api/v1/dispatch-catalogue/{category}", catalogue_set)
