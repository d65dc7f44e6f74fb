import asyncpg
from aiohttp.test_utils import TestClient
from support import TEST_PASSWORD

from hotline.auth import create_user


async def _login(client: TestClient, username: str, password: str = TEST_PASSWORD):
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def test_login_sets_httponly_samesite_cookie_and_audits(client: TestClient, pool: asyncpg.Pool) -> None:
    await create_user(pool, "wang", TEST_PASSWORD, ["agent"], display_name="王芳")
    resp = await _login(client, "wang")
    assert resp.status == 200
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    body = await resp.json()
    assert body["user"]["roles"] == ["agent"] and body["csrf_token"]
    me = await client.get("/api/v1/auth/me")
    assert (await me.json())["user"]["display_name"] == "王芳"
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sign_in' AND username = 'wang'") == 1
    # only a hash of the session token is stored
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))["hotline_session"].value
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE token_hash = $1", token) == 0


async def test_wrong_password_and_throttling(client: TestClient, pool: asyncpg.Pool) -> None:
    await create_user(pool, "li", TEST_PASSWORD, ["agent"])
    for _ in range(5):
        resp = await _login(client, "li", "wrong-password")
        assert resp.status == 401
    resp = await _login(client, "li")  # right password, but throttled now
    assert resp.status == 429
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sign_in_failed'") == 5


async def test_csrf_required_for_writes(api_as) -> None:
    admin = await api_as("admin")
    forged = await admin.client.post("/api/v1/users", json={"username": "x1", "password": "long-enough-1", "roles": ["agent"]})
    assert forged.status == 403
    assert (await forged.json())["error"]["code"] == "csrf_failed"
    ok = await admin.post("/api/v1/users", json={"username": "x1", "password": "long-enough-1", "roles": ["agent"]})
    assert ok.status == 201


async def test_role_checks(api_as) -> None:
    agent = await api_as("agent")
    resp = await agent.get("/api/v1/users")
    assert resp.status == 403
    assert "admin" in (await resp.json())["error"]["message"]
    admin = await api_as("admin")
    assert (await admin.get("/api/v1/users")).status == 200


async def test_user_admin_validation_names_the_field(api_as) -> None:
    admin = await api_as("admin")
    resp = await admin.post("/api/v1/users", json={"username": "z1", "password": "long-enough-1", "roles": ["wizard"]})
    assert resp.status == 400
    assert (await resp.json())["error"]["field"] == "roles"
    resp = await admin.post("/api/v1/users", json={"username": "z2", "password": "long-enough-1", "roles": ["liaison"]})
    assert (await resp.json())["error"]["field"] == "unit_code"
    resp = await admin.post("/api/v1/users", json={"username": "z3", "password": "short", "roles": ["agent"]})
    assert (await resp.json())["error"]["field"] == "password"


async def test_logout_everywhere_ends_all_sessions(server, pool: asyncpg.Pool) -> None:
    await create_user(pool, "zhao", TEST_PASSWORD, ["supervisor"])
    async with TestClient(server) as a, TestClient(server) as b:
        csrf_a = (await (await _login(a, "zhao")).json())["csrf_token"]
        await _login(b, "zhao")
        assert (await b.get("/api/v1/auth/me")).status == 200
        resp = await a.post("/api/v1/auth/logout-all", headers={"X-CSRF-Token": csrf_a})
        assert (await resp.json())["sessions_ended"] == 2
        assert (await b.get("/api/v1/auth/me")).status == 401


async def test_deactivated_user_loses_access(api_as, pool: asyncpg.Pool) -> None:
    agent = await api_as("agent")
    await pool.execute("UPDATE users SET active = false WHERE id = $1", agent.user.id)
    assert (await agent.get("/api/v1/auth/me")).status == 401
