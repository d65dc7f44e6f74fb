import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.web.access import PUBLIC, access_rule
from hotline.web.app import create_app


async def test_healthz_ok(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "ok"


async def test_healthz_503_when_database_is_gone(client: TestClient, pool: asyncpg.Pool) -> None:
    await pool.close()
    resp = await client.get("/healthz")
    assert resp.status == 503
    body = await resp.json()
    assert body == {"status": "unavailable", "database": "unavailable"}  # the cause is only logged


async def test_metrics_prometheus_text(client: TestClient) -> None:
    await client.get("/healthz")
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'hotline_http_requests_total{method="GET",route="/healthz",status="200"}' in text


async def test_hotlines_lists_33_numbers_public_view(client: TestClient) -> None:
    resp = await client.get("/api/v1/hotlines")
    assert resp.status == 200
    body = await resp.json()
    assert body["total"] == 33
    assert body["counts"] == {"platform": 1, "merged": 13, "dual": 14, "subcenter": 5}
    item = next(i for i in body["items"] if i["number"] == "12366")
    assert item["mode"] == "subcenter" and item["name"] == "纳税缴费服务热线"
    assert "dial_target" not in item  # PBX internals only for staff


async def test_hotlines_staff_view_has_internals(api_as) -> None:
    api = await api_as("supervisor")
    body = await (await api.get("/api/v1/hotlines")).json()
    item = next(i for i in body["items"] if i["number"] == "12366")
    assert item["dial_target"] == "PJSIP/12366@subcenter-tax"
    assert item["no_answer_timeout"] == 20


async def test_errors_are_json_with_code_and_message(client: TestClient) -> None:
    resp = await client.get("/api/v1/does-not-exist")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post("/api/v1/auth/login", data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_json" and error["field"] == "body"


async def test_security_headers(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


def test_every_route_has_an_access_rule(runtime) -> None:
    app = create_app(runtime.settings, runtime.registry, runtime=runtime)
    missing = []
    public = []
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        rule = access_rule(route.handler)
        if rule is None:
            missing.append(f"{route.method} {route.resource.canonical}")
        elif rule == PUBLIC:
            public.append(f"{route.method} {route.resource.canonical}")
    assert missing == []
    # public on purpose: health, metrics, sign-in, the published registry (+ feature additions)
    for expected in ("GET /healthz", "GET /metrics", "POST /api/v1/auth/login", "GET /api/v1/hotlines"):
        assert expected in public


async def test_route_without_rule_fails_closed(runtime) -> None:
    app = create_app(runtime.settings, runtime.registry, runtime=runtime)

    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app.router.add_get("/api/v1/forgotten", forgotten)
    from aiohttp.test_utils import TestServer

    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/api/v1/forgotten")
        assert resp.status in (401, 403)
        assert "secret" not in await resp.text()
