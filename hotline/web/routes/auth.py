"""Sign-in, sign-out, who am I; user administration for admins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from hotline import metrics
from hotline.auth import ROLES, audit, create_user, list_users, update_user
from hotline.auth.sessions import (
    clear_failures,
    create_session,
    end_all_sessions,
    end_session,
    forget_attempt,
    record_attempt,
)
from hotline.auth.users import (
    MAX_PASSWORD_LENGTH,
    MAX_USERNAME_LENGTH,
    PasswordChecker,
    SignInBusy,
    authenticate,
)
from hotline.db import transaction
from hotline.errors import TooManyRequests, Unauthenticated, ValidationError
from hotline.web.access import api_doc, current_user, public, requires
from hotline.web.keys import RUNTIME, SESSION
from hotline.web.middlewares import SESSION_COOKIE
from hotline.web.util import json_response, query_int, read_json

#: a sign-in body is two short strings; anything longer is refused before parsing
MAX_LOGIN_BODY = 4096
CHECKER = web.AppKey("password_checker", PasswordChecker)
#: seconds a sign-in refused as busy waits before its 503 (sleeping costs no CPU)
BUSY_DELAY = 0.5


def _text(body: dict, field: str, *, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} 必须填写（文本）", field=field)
    return value.strip() if field != "password" else value


_LOGIN_BODY = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}},
}
_USER_BODY = {
    "type": "object",
    "required": ["username", "password", "roles"],
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string", "minLength": 10},
        "roles": {"type": "array", "items": {"type": "string", "enum": list(ROLES)}},
        "display_name": {"type": "string"},
        "unit_code": {"type": "string"},
        "hotline_number": {"type": "string"},
    },
}


@public  # signing in cannot require being signed in; throttled per user and address
@api_doc(tags=["auth"], body=_LOGIN_BODY, responses={
    200: "signed in", 400: "username or password missing or too long", 401: "用户名或密码错误",
    413: "body too large", 415: "body not application/json", 429: "throttled",
    503: "too many sign-ins in progress (retry shortly)"})
async def login(request: web.Request) -> web.Response:
    """Sign in with username and password; sets the session cookie, returns the CSRF token."""
    runtime = request.app[RUNTIME]
    body = await read_json(request, max_bytes=MAX_LOGIN_BODY, strict_type=True)
    username = _text(body, "username")
    password = _text(body, "password")
    assert username is not None and password is not None
    if len(username) > MAX_USERNAME_LENGTH:
        raise ValidationError(f"用户名不能超过 {MAX_USERNAME_LENGTH} 个字符", field="username")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符", field="password")
    pool = runtime.pool
    checker = request.app[CHECKER]
    if checker.full:  # refused before any database work: a storm must stay cheap
        metrics.SIGN_INS.labels("busy").inc()
        # held a moment first: answered at once, a storm's clients would only ask faster,
        # and parsing their requests would take the event loop from call routing
        await asyncio.sleep(BUSY_DELAY)
        raise SignInBusy("登录请求过多，请稍后再试 (too many sign-ins in progress; retry shortly)", retry_after=1)
    # counted before the password is checked, so parallel guesses cannot all pass
    attempt, throttled = await record_attempt(pool, username, request.remote)
    if throttled:
        await forget_attempt(pool, attempt)
        metrics.SIGN_INS.labels("throttled").inc()
        await audit(pool, "sign_in_throttled", username=username, remote_addr=request.remote)
        raise TooManyRequests("登录失败次数过多，请 15 分钟后再试")
    try:
        user = await authenticate(pool, username, password, checker=checker)
    except SignInBusy:
        await forget_attempt(pool, attempt)
        metrics.SIGN_INS.labels("busy").inc()
        raise
    if user is None:
        await audit(pool, "sign_in_failed", username=username, remote_addr=request.remote)
        metrics.SIGN_INS.labels("failed").inc()
        raise Unauthenticated("用户名或密码错误")
    await clear_failures(pool, username)
    settings = runtime.settings.web
    async with transaction(pool) as conn:  # the audit row commits with the session it records
        token, csrf = await create_session(
            conn,
            user,
            absolute=timedelta(hours=settings.session_absolute_hours),
            remote_addr=request.remote,
            user_agent=request.headers.get("User-Agent"),
        )
        await audit(conn, "sign_in", user=user, remote_addr=request.remote)
    metrics.SIGN_INS.labels("ok").inc()
    response = json_response({"user": user.to_json(), "csrf_token": csrf})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="Strict",
        path="/",
        max_age=settings.session_absolute_hours * 3600,
    )
    return response


@requires()
async def logout(request: web.Request) -> web.Response:
    """Sign out of this session."""
    pool = request.app[RUNTIME].pool
    async with transaction(pool) as conn:  # the audit row commits with the change
        await end_session(conn, request[SESSION].token_hash)
        await audit(conn, "sign_out", user=current_user(request), remote_addr=request.remote)
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@requires()
async def logout_everywhere(request: web.Request) -> web.Response:
    """Sign out of every session of the current user (logout everywhere)."""
    pool = request.app[RUNTIME].pool
    user = current_user(request)
    async with transaction(pool) as conn:  # the audit row commits with the change
        ended = await end_all_sessions(conn, user.id)
        await audit(conn, "sign_out_everywhere", user=user, detail={"sessions": ended}, remote_addr=request.remote)
    response = json_response({"ok": True, "sessions_ended": ended})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@requires()
async def me(request: web.Request) -> web.Response:
    """The signed-in user and the session's CSRF token."""
    return json_response({"user": current_user(request).to_json(), "csrf_token": request[SESSION].csrf_token})


@requires("admin")
async def users_list(request: web.Request) -> web.Response:
    """List console users (admin)."""
    users = await list_users(request.app[RUNTIME].pool)
    return json_response({"items": [u.to_json() for u in users]})


@requires("admin")
@api_doc(tags=["users"], body=_USER_BODY, responses={201: "created", 409: "username taken"})
async def users_create(request: web.Request) -> web.Response:
    """Create a console user with roles (admin)."""
    body = await read_json(request)
    pool = request.app[RUNTIME].pool
    roles = body.get("roles")
    if not isinstance(roles, list):
        raise ValidationError("roles 必须是列表", field="roles")
    async with transaction(pool) as conn:  # the audit row commits with the change, or neither does
        user = await create_user(
            conn,
            _text(body, "username") or "",
            _text(body, "password") or "",
            roles,
            display_name=_text(body, "display_name", required=False),
            unit_code=_text(body, "unit_code", required=False),
            hotline_number=_text(body, "hotline_number", required=False),
        )
        await audit(conn, "user_created", user=current_user(request), object_type="user",
                    object_id=user.id, detail={"roles": sorted(user.roles)}, remote_addr=request.remote)
    return json_response({"user": user.to_json()}, status=201)


@requires("admin")
async def users_update(request: web.Request) -> web.Response:
    """Change a user's roles, unit, line, password or active flag (admin)."""
    try:
        user_id = int(request.match_info["id"])
    except ValueError:
        raise ValidationError(f"用户编号必须是数字，收到 {request.match_info['id']!r}", field="id") from None
    body = await read_json(request)
    pool = request.app[RUNTIME].pool
    changed = sorted(k for k in body if k != "password") + (["password"] if "password" in body else [])
    async with transaction(pool) as conn:
        user = await update_user(conn, user_id, body)
        await audit(conn, "user_updated", user=current_user(request), object_type="user",
                    object_id=user_id, detail={"changed": changed}, remote_addr=request.remote)
    return json_response({"user": user.to_json()})


@requires("admin")
async def audit_list(request: web.Request) -> web.Response:
    """Read the audit log, newest first (admin)."""
    limit = query_int(request, "limit", 100)
    rows = await request.app[RUNTIME].pool.fetch(
        """SELECT id, at, user_id, username, action, object_type, object_id, detail, remote_addr
             FROM audit_log
            WHERE ($1::text IS NULL OR action = $1)
            ORDER BY id DESC LIMIT $2""",
        request.query.get("action"),
        limit,
    )
    return json_response({"items": [dict(r) for r in rows]})


async def _checker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[RUNTIME].settings.web
    app[CHECKER] = PasswordChecker(settings.signin_concurrency, settings.signin_backlog)
    yield
    app[CHECKER].close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_checker_ctx)
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_post("/api/v1/auth/logout-all", logout_everywhere)
    app.router.add_get("/api/v1/auth/me", me)
    app.router.add_get("/api/v1/users", users_list)
    app.router.add_post("/api/v1/users", users_create)
    app.router.add_patch("/api/v1/users/{id}", users_update)
    app.router.add_get("/api/v1/audit", audit_list)
