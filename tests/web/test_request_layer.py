"""One request layer: every route that declares a ``limit``, a boolean parameter or a
JSON body in ``@api_doc`` refuses ``?limit=-1``, ``?<flag>=yes`` and a body that is not
JSON with the same 400 shape (``{"error": {"code", "message", "field"}}``, message in
Chinese naming the field and the value), before its handler runs. The routes are
walked from the OpenAPI document, which is generated from the router."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hotline.errors import ValidationError
from hotline.web.params import paging, param_bool, validate

ALL_ROLES = ("agent", "expert", "dispatcher", "supervisor", "admin")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _assert_400(body: dict[str, Any], code: str, field: str, where: str) -> None:
    error = body.get("error")
    assert isinstance(error, dict), where
    assert error["code"] == code, (where, error)
    assert error["field"] == field, (where, error)
    assert CJK.search(error["message"]), (where, error)


class Everyone:
    """A user with every role, and a unit liaison (a liaison needs a unit): each
    request goes to the first one the route lets in."""

    def __init__(self, users: list[Any]) -> None:
        self.users = users
        self.client = users[0].client

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        for api in self.users:
            resp = await api.request(method, path, **kw)
            if resp.status != 403:
                return resp
        return resp


async def _everyone(api_as, runtime) -> Everyone:
    unit = await runtime.pool.fetchval("SELECT code FROM units ORDER BY code LIMIT 1")
    return Everyone([await api_as(*ALL_ROLES), await api_as("liaison", unit_code=unit)])


async def _spec(api: Any) -> dict[str, Any]:
    resp = await api.client.get("/api/openapi.json")
    assert resp.status == 200
    return await resp.json()


def _operations(spec: dict[str, Any]):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


async def test_every_declared_limit_refuses_minus_one_the_same_way(api_as, runtime) -> None:
    api = await _everyone(api_as, runtime)
    spec = await _spec(api)
    checked = []
    for path, method, op in _operations(spec):
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        if "limit" not in names:
            continue
        where = f"{method.upper()} {path}"
        resp = await api.request(method, _concrete(path) + "?limit=-1")
        assert resp.status == 400, (where, await resp.text())
        _assert_400(await resp.json(), "out_of_range", "limit", where)
        assert "-1" in (await resp.json())["error"]["message"], where
        checked.append(where)
    assert len(checked) >= 5, checked  # calls, tickets, sla, upstream, feed, ...


async def test_every_declared_boolean_refuses_yes_the_same_way(api_as, runtime) -> None:
    api = await _everyone(api_as, runtime)
    spec = await _spec(api)
    checked = []
    for path, method, op in _operations(spec):
        for p in op.get("parameters", []):
            if p["in"] != "query" or p.get("schema", {}).get("type") != "boolean":
                continue
            where = f"{method.upper()} {path} ?{p['name']}"
            resp = await api.request(method, f"{_concrete(path)}?{p['name']}=yes")
            assert resp.status == 400, (where, await resp.text())
            _assert_400(await resp.json(), "invalid_boolean", p["name"], where)
            checked.append(where)
    assert any("?open" in c for c in checked), checked
    assert len(checked) >= 5, checked


async def test_every_declared_body_refuses_bad_json_the_same_way(api_as, runtime) -> None:
    api = await _everyone(api_as, runtime)
    spec = await _spec(api)
    checked = []
    for path, method, op in _operations(spec):
        if "requestBody" not in op or op.get("security") == []:
            continue  # public routes read their own bodies (a signed batch is verified first)
        where = f"{method.upper()} {path}"
        resp = await api.request(method, _concrete(path), data="{not json",
                                 headers={"Content-Type": "application/json"})
        assert resp.status == 400, (where, await resp.text())
        _assert_400(await resp.json(), "invalid_json", "body", where)
        checked.append(where)
    assert len(checked) >= 20, checked


async def test_a_declared_body_schema_is_enforced_without_handler_code(api_as) -> None:
    api = await api_as("admin")
    resp = await api.post("/api/v1/users", json={"username": "x", "roles": "admin"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["field"] in ("password", "roles"), error
    assert CJK.search(error["message"])


def test_booleans_have_one_meaning() -> None:
    assert param_bool({"x": "true"}, "x") is True and param_bool({"x": "1"}, "x") is True
    assert param_bool({"x": "false"}, "x") is False and param_bool({"x": "0"}, "x") is False
    assert param_bool({}, "x", default=True) is True
    for raw in ("yes", "no", "on", "y"):
        with pytest.raises(ValidationError) as caught:
            param_bool({"x": raw}, "x")
        assert caught.value.code == "invalid_boolean" and raw in caught.value.message


def test_the_validator_names_every_problem_field_and_value() -> None:
    schema = {"type": "object", "required": ["kind"], "properties": {
        "kind": {"enum": ["expert", "subcenter"]}, "n": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}}, "day": {"type": "string", "format": "date"}}}
    validate({"kind": "expert", "n": 3, "tags": ["a"], "day": "2026-11-30", "other": 1}, schema)
    validate({"kind": "expert", "n": None}, schema)  # an optional field sent as null is absent
    with pytest.raises(ValidationError) as caught:
        validate({"n": 0, "tags": ["a", 2], "day": "2026-13-01"}, schema)
    problems = {(p["field"], p["code"]) for p in caught.value.details["problems"]}
    assert problems == {("kind", "missing_field"), ("n", "out_of_range"), ("tags", "invalid_type"),
                        ("day", "invalid_format")}
    assert "2026-13-01" in caught.value.message and "tags[1]" in caught.value.message
    with pytest.raises(ValidationError) as caught:
        validate({"kind": "boss"}, schema)
    assert caught.value.code == "invalid_choice" and "'boss'" in caught.value.message


def test_paging_bounds() -> None:
    from aiohttp.test_utils import make_mocked_request

    page = paging(make_mocked_request("GET", "/x?limit=20&offset=40"), default=50, high=100)
    assert (page.limit, page.offset) == (20, 40)
    for query in ("limit=0", "limit=-1", "limit=101", "offset=-1", "limit=abc"):
        with pytest.raises(ValidationError):
            paging(make_mocked_request("GET", f"/x?{query}"), high=100)
