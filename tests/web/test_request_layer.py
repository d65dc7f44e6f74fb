"""One request layer: every route that declares a ``limit``, a boolean parameter or a
JSON body in ``@api_doc`` refuses ``?limit=-1``, ``?<flag>=yes`` and a body that is not
JSON with the same 400 shape (``{"error": {"code", "message", "field"}}``, message in
Chinese naming the field and the value), before its handler runs. The routes are
walked from the OpenAPI document, which is generated from the router.

What a route does not declare cannot escape either: ``test_every_route_in_the_router...``
walks the aiohttp router itself and records, per request, which query parameters the
middlewares and the handler read and whether the body was read; a route that reads
``limit`` or a body answers ``?limit=-1`` and a bad JSON body with the same 400, and no
query parameter it reads turns ``yes`` into a 500 or another shape. A hand-made
boolean or integer reader in the web package is refused by reading its source."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import hotline.web
from hotline.errors import ValidationError
from hotline.web import middlewares, params, util
from hotline.web.keys import RUNTIME
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
    request goes to the first one the route lets in. A route that signs the user out
    (``/auth/logout``) leaves the next request a 401: then fresh users sign in."""

    def __init__(self, api_as: Any, unit: str, reads: _Reads | None = None) -> None:
        self.api_as, self.unit, self.reads = api_as, unit, reads
        self.users: list[Any] = []

    async def sign_in(self) -> Everyone:
        self.users = [await self.api_as(*ALL_ROLES), await self.api_as("liaison", unit_code=self.unit)]
        self.client = self.users[0].client
        if self.reads is not None:
            self.reads.clear()  # what the sign-ins read is not the retried request's
        return self

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(2):
            for api in self.users:
                resp = await api.request(method, path, **kw)
                if resp.status != 403:
                    break
            if resp.status != 401 or attempt:
                return resp
            await self.sign_in()
        return resp


async def _everyone(api_as, runtime, reads: _Reads | None = None) -> Everyone:
    unit = await runtime.pool.fetchval("SELECT code FROM units ORDER BY code LIMIT 1")
    return await Everyone(api_as, unit, reads).sign_in()


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


class _ReadQuery:
    """``request.query`` that notes every parameter name read (by the middlewares or
    the handler, through hotline.web.params or by hand)."""

    def __init__(self, query: Any, seen: set[str]) -> None:
        self._query, self._seen = query, seen

    def _note(self, name: Any) -> None:
        self._seen.add(str(name))

    def get(self, name: str, default: Any = None) -> Any:
        self._note(name)
        return self._query.get(name, default)

    def getone(self, name: str, *default: Any) -> Any:
        self._note(name)
        return self._query.getone(name, *default)

    def getall(self, name: str, *default: Any) -> Any:
        self._note(name)
        return self._query.getall(name, *default)

    def __getitem__(self, name: str) -> Any:
        self._note(name)
        return self._query[name]

    def __contains__(self, name: object) -> bool:
        self._note(name)
        return name in self._query

    def __iter__(self) -> Iterator[str]:
        self._seen.add("*")
        return iter(self._query)

    def __len__(self) -> int:
        return len(self._query)

    def keys(self) -> Any:
        self._seen.add("*")
        return self._query.keys()

    def items(self) -> Any:
        self._seen.add("*")
        return self._query.items()

    def values(self) -> Any:
        self._seen.add("*")
        return self._query.values()


class _Reads:
    """What the server read while answering the last request: query parameter names
    and whether it parsed the body as JSON."""

    def __init__(self) -> None:
        self.query: set[str] = set()
        self.body = False

    def clear(self) -> None:
        self.query, self.body = set(), False


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> _Reads:
    """Notes what the server reads: the query through ``request.query``, the body as
    JSON through ``parse_json`` (the web package's one JSON parser: the source test
    below keeps it so)."""
    seen = _Reads()
    parse = params.parse_json

    def noted_parse(raw: bytes) -> Any:
        seen.body = True
        return parse(raw)

    monkeypatch.setattr(web.BaseRequest, "query", property(lambda self: _ReadQuery(self.rel_url.query, seen.query)))
    for module in (middlewares, util):
        assert module.parse_json is parse
        monkeypatch.setattr(module, "parse_json", noted_parse)
    return seen


def _router_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """Every route of the app's router (not the OpenAPI document): method, path, handler."""
    out = []
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method in ("HEAD", "OPTIONS"):
            continue
        path = route.resource.canonical if route.resource is not None else ""
        out.append((route.method, path, route.handler))
    # the routes that end the session go last (Everyone signs in again after them anyway)
    return sorted(out, key=lambda r: ("logout" in r[1], r[1], r[0]))


BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
#: public routes that answer every wrong input with one and the same refusal on purpose
#: (the citizens' progress look-up: a 400 would tell a guesser which input was wrong;
#: docs/RATES.md, tests/numbering/test_progress.py); the error shape holds
SAME_REFUSAL_FOR_EVERY_WRONG_INPUT = {"POST /api/v1/public/progress": (404, "not_found")}


async def test_every_route_in_the_router_refuses_bad_limit_and_body_the_same_way(
        api_as, runtime, server, reads: _Reads) -> None:
    """Every route the router has, declared in ``@api_doc`` or not: the ones that read
    ``limit`` answer ``?limit=-1`` with the one 400; the ones that read a body answer a
    body that is not JSON with the one 400; none answers 500."""
    api = await _everyone(api_as, runtime, reads)
    app = server.app
    assert app[RUNTIME] is runtime
    took_limit, took_body, routes = [], [], _router_routes(app)
    assert len(routes) >= 100, len(routes)
    for method, path, _ in routes:
        where = f"{method} {path}"
        if path.endswith("/ws"):
            continue  # the console's WebSocket: no query, no body (tests/console)
        kw: dict[str, Any] = {}
        if method in BODY_METHODS:
            kw = {"data": "{not json", "headers": {"Content-Type": "application/json"}}
        reads.clear()
        resp = await api.request(method, _concrete(path) + "?limit=-1", **kw)
        text = await resp.text()
        assert resp.status < 500, (where, resp.status, text)
        if "limit" in reads.query or "*" in reads.query:
            assert resp.status == 400, (where, text)
            _assert_400(await resp.json(), "out_of_range", "limit", where)
            took_limit.append(where)
        elif reads.body and where in SAME_REFUSAL_FOR_EVERY_WRONG_INPUT:
            status, code = SAME_REFUSAL_FOR_EVERY_WRONG_INPUT[where]
            assert (resp.status, (await resp.json())["error"]["code"]) == (status, code), (where, text)
            assert CJK.search((await resp.json())["error"]["message"]), (where, text)
        elif reads.body:
            assert resp.status == 400, (where, text)
            _assert_400(await resp.json(), "invalid_json", "body", where)
            took_body.append(where)
    assert len(took_limit) >= 10 and "GET /api/v1/audit" in took_limit, took_limit  # audit: not declared
    assert len(took_body) >= 40, took_body


async def test_no_query_parameter_of_any_route_turns_yes_into_another_answer_shape(
        api_as, runtime, server, reads: _Reads) -> None:
    """Every parameter a GET route reads, sent as ``yes``: accepted as a value, or the
    one 400 naming that parameter in Chinese; never a 500 (a boolean or an integer
    read by hand would be one of those or silently false: see the source test below)."""
    api = await _everyone(api_as, runtime, reads)
    checked = []
    for method, path, _ in _router_routes(server.app):
        if method != "GET" or path.endswith("/ws"):
            continue
        reads.clear()
        await api.request(method, _concrete(path))
        for name in sorted(reads.query - {"*"}):
            where = f"GET {path} ?{name}=yes"
            resp = await api.request(method, f"{_concrete(path)}?{name}=yes")
            text = await resp.text()
            assert resp.status < 500, (where, resp.status, text)
            if resp.status == 400:
                body = await resp.json()
                if body["error"].get("field") == name:
                    _assert_400(body, body["error"]["code"], name, where)
                    checked.append(where)
    assert any("?open=yes" in c for c in checked) and any("?all=yes" in c for c in checked), checked


_WEB = Path(hotline.web.__file__).parent
_BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "on", "off"}


def _query_value(node: ast.AST) -> bool:
    """``request.query.get(..)``, ``request.query[..]`` (or ``x or`` one of them)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getone"):
        node = node.func.value
    elif isinstance(node, ast.Subscript):
        node = node.value
    elif isinstance(node, ast.BoolOp | ast.IfExp):
        return any(_query_value(child) for child in ast.iter_child_nodes(node))
    else:
        return False
    return isinstance(node, ast.Attribute) and node.attr == "query"


def test_the_web_package_reads_no_boolean_or_integer_parameter_by_hand() -> None:
    """The request layer is the only reader: no ``int(request.query...)``, no comparison
    of a query value with ``"true"``/``"1"``/``"yes"``, no JSON parsed but by
    ``params.parse_json`` (``request.json()``, ``json.loads``), no query read past
    ``request.query`` (``request.rel_url.query``) anywhere under hotline/web: what the
    router walk above records is all a route can read."""
    found = []
    for path in sorted(_WEB.rglob("*.py")):
        if path.name == "params.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "bool") \
                    and node.args and _query_value(node.args[0]):
                found.append(f"{path.name}:{node.lineno} {node.func.id}() of a query value")
            if isinstance(node, ast.Attribute) and node.attr == "query" and isinstance(node.value, ast.Attribute) \
                    and node.value.attr in ("rel_url", "url"):
                found.append(f"{path.name}:{node.lineno} reads {node.value.attr}.query past request.query")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                    node.func.attr == "loads" or node.func.attr == "json" and not node.args and not node.keywords):
                found.append(f"{path.name}:{node.lineno} parses JSON itself ({node.func.attr}), not params.parse_json")
            if isinstance(node, ast.Compare) and any(map(_query_value, [node.left, *node.comparators])):
                literals = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
                if literals & _BOOL_WORDS:
                    found.append(f"{path.name}:{node.lineno} compares a query value with {sorted(literals)}")
    assert not found, found


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
