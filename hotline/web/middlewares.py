"""Middlewares, outermost first: client address, request log + metrics, error mapping,
access control."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from aiohttp import web
from aiohttp.streams import StreamReader

from hotline import metrics
from hotline.auth.sessions import load_session
from hotline.db.errors import is_unavailable
from hotline.errors import Forbidden, HotlineError, Unavailable
from hotline.web.access import DOC_ATTR, PUBLIC, access_rule, check_rule
from hotline.web.keys import RUNTIME, SESSION, USER
from hotline.web.params import check_query, parse_json, validate
from hotline.web.util import PARSED_BODY, json_response

log = logging.getLogger("hotline.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: methods that get their own metrics label; any other is counted as "other"
LABELLED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(proxies: Sequence[str]) -> tuple[Network, ...]:
    # parsed on each request that has proxies to trust (microseconds for the few a site
    # lists), from the node's own settings: no process-wide memo of one node's setting
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[str]) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For entry that is not itself a trusted proxy (entries to
    its left were written by the client and prove nothing)."""
    networks = _networks(tuple(proxies))
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop: do not believe anything further left
    return hops[0] if hops else peer


@web.middleware
async def client_address_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Puts the client's address in ``request.remote`` (X-Forwarded-For believed only
    from ``[web] trusted_proxies``), so throttling and the audit log see the client."""
    proxies = request.app[RUNTIME].settings.web.trusted_proxies
    if proxies:
        remote = client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)
        if remote is not None and remote != request.remote:
            request = request.clone(remote=remote)
    return await handler(request)


class CsrfRejected(Forbidden):
    code = "csrf_failed"


def _route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "<unmatched>"
    resource = info.route.resource
    return resource.canonical if resource is not None else "<unknown>"


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    route = _route_name(request)
    status = 500
    metrics.HTTP_IN_FLIGHT.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.HTTP_IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        method = request.method if request.method in LABELLED_METHODS else "other"
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_DURATION.labels(method, route).observe(elapsed)
        user = request.get(USER)
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
                "user": user.username if user else "-",
                "remote": request.remote,
            },
        )


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HotlineError as exc:
        return json_response({"error": exc.to_dict()}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error"
        )
        return json_response(error_body(code, exc.reason), status=exc.status, headers=None)
    except Exception as exc:
        if is_unavailable(exc):  # the one predicate: a restarting PostgreSQL is unavailable too
            log.error("database unavailable: %s", exc)
            err = Unavailable(f"数据库暂时不可用（{type(exc).__name__}），请稍后再试")
            return json_response({"error": err.to_dict()}, status=err.status)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(error_body("internal", "internal error; see the server log"), status=500)


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    info = request.match_info
    if info.http_exception is not None:
        raise info.http_exception
    route = info.route
    if isinstance(route.resource, web.StaticResource):
        return await handler(request)  # console assets are public on purpose

    rule = access_rule(route.handler)
    if rule != PUBLIC or request.cookies.get(SESSION_COOKIE):
        await _load_user(request)
    check_rule(rule, request.get(USER), f"{request.method} {_route_name(request)}")
    session = request.get(SESSION)
    if session is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise CsrfRejected(f"missing or wrong {CSRF_HEADER} header")
    return await handler(request)


async def _load_user(request: web.Request) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    settings = request.app[RUNTIME].settings
    session = await load_session(
        request.app[RUNTIME].pool, token, idle=timedelta(minutes=settings.web.session_idle_minutes)
    )
    if session is not None:
        request[SESSION] = session
        request[USER] = session.user


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    )


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.middleware
async def validation_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one request check: the query parameters and the JSON body a route declares in
    ``@api_doc`` are checked against that schema before the handler runs (after access
    control, so an anonymous caller learns nothing from a 400). The handler's
    ``read_json`` then returns the checked body. Public routes' bodies are left to the
    handler: they authenticate the body itself (a signed ingest batch is verified
    before it is parsed) or cap it first (sign-in)."""
    route = request.match_info.route
    doc = getattr(route.handler, DOC_ATTR, None) if route is not None else None
    if not doc:
        return await handler(request)
    if doc.get("query"):
        check_query(request.query, doc["query"])
    schema = doc.get("body")
    if (schema and request.method in BODY_METHODS and request.body_exists
            and access_rule(route.handler) != PUBLIC
            and request.content_type in ("application/json", "application/octet-stream")):
        raw = await request.read()
        _put_back(request, raw)
        if raw.strip():
            body = parse_json(raw)
            validate(body, schema)
            request[PARSED_BODY] = body
    return await handler(request)


def _put_back(request: web.Request, raw: bytes) -> None:
    """Let the handler find the body as if nobody had read it (``can_read_body``,
    ``request.content``): aiohttp has no public way to put a read body back, so the
    request's payload stream is replaced by one holding the same bytes."""
    stream = StreamReader(request.protocol, limit=2**16, loop=asyncio.get_running_loop())
    stream.feed_data(raw)
    stream.feed_eof()
    request._payload = stream  # noqa: SLF001
