"""Regions (属地, GB/T 2260), the region x category dispatch rules and the unit
suggested for a ticket. Thin: the domain is hotline.tickets.regions."""

from __future__ import annotations

from aiohttp import web

from hotline.auth import audit
from hotline.errors import ValidationError
from hotline.tickets.regions import list_rules, region_tree, save_region, set_rule, suggest_unit
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import query_bool
from hotline.web.util import json_response, read_json

TAGS = ["regions"]
REGION_BODY = {"type": "object", "properties": {
    "code": {"type": "string", "pattern": "^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"}, "name": {"type": "string"},
    "level": {"enum": ["city", "district", "street", "community"]}, "parent_code": {"type": ["string", "null"]},
    "active": {"type": "boolean"}}}
RULE_BODY = {"type": "object", "required": ["region_code", "unit_code"], "properties": {
    "region_code": {"type": "string"}, "category_code": {"type": ["string", "null"]},
    "unit_code": {"type": ["string", "null"], "description": "null removes the rule"}, "note": {"type": "string"}}}


@requires()
@api_doc(tags=TAGS, query={"all": {"type": "boolean", "description": "include inactive"}},
         responses={200: "the region tree with the units bound to each region"})
async def regions(request: web.Request) -> web.Response:
    """The region tree (属地): city, districts, streets and townships (GB/T 2260 codes)."""
    tree = await region_tree(request.app[RUNTIME].pool, include_inactive=query_bool(request, "all"))
    return json_response({"items": tree})


@requires("admin", "supervisor")
@api_doc(tags=TAGS, body=REGION_BODY, responses={201: "created", 409: "code exists"})
async def region_create(request: web.Request) -> web.Response:
    """Add a region (code, name, level, parent_code)."""
    body = await read_json(request)
    code = body.pop("code", None)
    if not isinstance(code, str):
        raise ValidationError(f"请填写区划代码 code，收到 {code!r}", field="code", value=code, code="missing_field")
    user = current_user(request)
    async with request.app[RUNTIME].pool.acquire() as conn, conn.transaction():
        region = await save_region(conn, code, body, create=True, user_id=user.id)
        await audit(conn, "region_created", user=user, object_type="region", object_id=code)
    return json_response({"region": region}, status=201)


@requires("admin", "supervisor")
@api_doc(tags=TAGS, body=REGION_BODY, responses={200: "updated", 404: "no such region"})
async def region_update(request: web.Request) -> web.Response:
    """Rename, move or (de)activate a region."""
    body = await read_json(request)
    code = request.match_info["code"]
    user = current_user(request)
    async with request.app[RUNTIME].pool.acquire() as conn, conn.transaction():
        region = await save_region(conn, code, body, create=False, user_id=user.id)
        await audit(conn, "region_updated", user=user, object_type="region", object_id=code,
                    detail={"changed": sorted(body)})
    return json_response({"region": region})


@requires()
@api_doc(tags=TAGS, responses={200: "region x category -> unit rules"})
async def rules(request: web.Request) -> web.Response:
    """The region x category dispatch rules (属地派单规则)."""
    return json_response({"items": await list_rules(request.app[RUNTIME].pool)})


@requires("admin", "supervisor", "dispatcher")
@api_doc(tags=TAGS, body=RULE_BODY, responses={200: "the rule (null when removed)", 400: "unknown region or unit"})
async def rule_set(request: web.Request) -> web.Response:
    """Set (or with `unit_code: null` remove) the unit for a region and category."""
    body = await read_json(request)
    user = current_user(request)
    async with request.app[RUNTIME].pool.acquire() as conn, conn.transaction():
        rule = await set_rule(conn, body, user_id=user.id)
        await audit(conn, "dispatch_rule_changed", user=user, object_type="region",
                    object_id=str(body.get("region_code")), detail={"category_code": body.get("category_code"),
                                                                    "unit_code": body.get("unit_code")})
    return json_response({"rule": rule})


@requires("agent", "expert", "dispatcher", "supervisor", "admin")
@api_doc(tags=TAGS, query={"region": {"type": "string"}, "category": {"type": "string"}},
         responses={200: "the suggested unit (null when none is configured)"})
async def suggest(request: web.Request) -> web.Response:
    """The unit dispatch suggests for a region and category (rule, then catalogue, then the region's unit)."""
    region = request.query.get("region") or None
    category = request.query.get("category") or None
    pool = request.app[RUNTIME].pool
    async with pool.acquire() as conn:
        unit = await suggest_unit(conn, region, category)
        row = await conn.fetchrow("SELECT code, name, kind FROM units WHERE code = $1", unit) if unit else None
    return json_response({"unit": dict(row) if row else None})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/regions", regions)
    app.router.add_post("/api/v1/regions", region_create)
    app.router.add_patch("/api/v1/regions/{code}", region_update)
    app.router.add_get("/api/v1/dispatch-rules", rules)
    app.router.add_put("/api/v1/dispatch-rules", rule_set)
    app.router.add_get("/api/v1/dispatch-suggestion", suggest)
