"""The ``caller=`` filter of list routes, one rule for calls and tickets.

Trying the 10⁴ middle digits of a masked number against a full-number filter would
reveal it, so only roles that may see numbers (supervisor, admin) filter by a full
number, and each such search is audited. Everyone else filters by the masked form
they already see (``138****5678``), which tells them nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from hotline.auth import audit
from hotline.errors import Forbidden
from hotline.phone import mask, masked_pattern, normalize
from hotline.web.access import current_user
from hotline.web.keys import RUNTIME

FULL_NUMBER_ROLES = ("supervisor", "admin")


@dataclass(frozen=True, slots=True)
class CallerFilter:
    #: a normalised full number (exact match), or None
    number: str | None = None
    #: a LIKE pattern from a masked number, or None
    pattern: str | None = None


async def caller_filter(request: web.Request, *, audit_action: str) -> CallerFilter:
    raw = request.query.get("caller")
    if not raw:
        return CallerFilter()
    pattern = masked_pattern(raw)
    if pattern is not None:
        return CallerFilter(pattern=pattern)
    user = current_user(request)
    if not user.has_role(*FULL_NUMBER_ROLES):
        raise Forbidden("只有班长或系统管理员可以按完整号码查询；请使用脱敏号码（如 138****5678）",
                        field="caller")
    number = normalize(raw).number
    await audit(request.app[RUNTIME].pool, audit_action, user=user, object_type="caller",
                detail={"path": request.path, "caller": mask(number)}, remote_addr=request.remote)
    return CallerFilter(number=number)
