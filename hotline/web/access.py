"""Access rules on handlers. Every route is closed unless its handler says otherwise:

* ``@public`` — open to anyone on purpose (health, metrics, sign-in, console assets);
* ``@requires("agent", "supervisor")`` — a signed-in user holding any of the roles;
* ``@requires()`` — any signed-in user.

A handler with no rule is refused with 403 for everyone (and a test walks every
route to make sure each one has a rule), so forgetting the decorator fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from hotline.auth.model import ROLE_NAMES_ZH, ROLES, User
from hotline.errors import Forbidden, Unauthenticated
from hotline.web.keys import USER

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "__hotline_access__"
PUBLIC = "public"


def public(handler: F) -> F:
    setattr(handler, ACCESS_ATTR, PUBLIC)
    return handler


def requires(*roles: str) -> Callable[[F], F]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(handler: F) -> F:
        setattr(handler, ACCESS_ATTR, frozenset(roles))
        return handler

    return mark


def access_rule(handler: Any) -> str | frozenset[str] | None:
    """The rule on a handler (unwrapping aiohttp's wrappers), or None when it has none."""
    seen = 0
    while handler is not None and seen < 5:
        rule = getattr(handler, ACCESS_ATTR, None)
        if rule is not None:
            return rule
        handler = getattr(handler, "__wrapped__", None) or getattr(handler, "__func__", None)
        seen += 1
    return None


def current_user(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise Unauthenticated("请先登录")
    return user


def check_rule(rule: str | frozenset[str] | None, user: User | None, what: str) -> None:
    if rule == PUBLIC:
        return
    if rule is None:
        raise Forbidden(f"{what} 没有声明访问规则（拒绝访问）")
    if user is None:
        raise Unauthenticated("请先登录")
    if rule and not user.has_role(*rule):
        raise Forbidden(
            f"{what} 需要以下角色之一：{_roles_zh(rule)}；您的角色：{_roles_zh(user.roles) or '无'}",
            required=sorted(rule),
        )


def _roles_zh(roles: Any) -> str:
    return "、".join(f"{ROLE_NAMES_ZH.get(r, r)}（{r}）" for r in sorted(roles))


DOC_ATTR = "__hotline_api_doc__"


def api_doc(
    *,
    tags: list[str] | None = None,
    query: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    responses: dict[int | str, Any] | None = None,
) -> Callable[[F], F]:
    """Extra OpenAPI detail for a handler. The summary and description come from the
    handler's docstring (first line, rest); ``query`` maps parameter names to JSON
    schemas (``{"q": {"type": "string", "description": ...}}``); ``body`` is the
    request body's JSON schema; ``responses`` maps status codes to descriptions or
    ``{"description":..., "schema":...}``."""

    def mark(handler: F) -> F:
        setattr(handler, DOC_ATTR, {"tags": tags, "query": query, "body": body, "responses": responses})
        return handler

    return mark
