from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.web.access import PUBLIC, access_rule
from hotline.web.app import create_app
from hotline.web.routes.openapi import _PARAM_RE


async def test_openapi_describes_every_route(client: TestClient, runtime) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.")
    app = create_app(runtime.settings, runtime.registry, runtime=runtime)
    undocumented = []
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method in ("HEAD", "*"):
            continue
        path = _PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", route.resource.canonical)
        op = spec["paths"].get(path, {}).get(route.method.lower())
        if op is None or not op["summary"]:
            undocumented.append(f"{route.method} {path}")
            continue
        rule = access_rule(route.handler)
        if rule == PUBLIC:
            assert op["security"] == [], path
        else:
            assert "x-roles" in op and "401" in op["responses"], path
    assert undocumented == []


async def test_openapi_carries_declared_detail(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    create = spec["paths"]["/api/v1/users"]["post"]
    assert create["x-roles"] == ["admin"]
    assert "roles" in create["requestBody"]["content"]["application/json"]["schema"]["properties"]
    patch = spec["paths"]["/api/v1/users/{id}"]["patch"]
    assert patch["parameters"][0] == {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
