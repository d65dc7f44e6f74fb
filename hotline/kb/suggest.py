"""Suggestions for the screen-pop and the call flow's ``kb_lookup`` (a contract other
packages call): the best published, currently valid articles for a line plus the
caller's words.

``await suggest(runtime, hotline_number="12329", text="公积金怎么提取", limit=5)`` →
``[{"id", "title", "score", "snippet", ...}]``. Without words, the line's most-read
articles (hot Q&A first) come from PostgreSQL; with words, the index is searched on
the line first and topped up from every line (12345 agents answer for all lines).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline.kb.engine import SearchRequest, get_kb
from hotline.kb.popular import popular
from hotline.runtime import Runtime

#: the caller's words can be a long ASR transcript: keep the start
MAX_TEXT_CHARS = 200


async def suggest(runtime: Runtime, *, hotline_number: str | None, text: str | None,
                  limit: int = 5) -> list[dict[str, Any]]:
    limit = max(1, min(int(limit), 20))
    line = hotline_number if hotline_number and hotline_number != "12345" else None
    words = (text or "").strip()[:MAX_TEXT_CHARS]
    today = dt.datetime.now(runtime.settings.tz).date()
    if not words:
        return await popular(runtime.pool, line=line, today=today, limit=limit)
    kb = await get_kb(runtime)
    found: list[dict[str, Any]] = []
    if line:
        found = (await kb.search(SearchRequest(text=words, hotline=line, per_page=limit, nothing_found_help=False)))["items"]
    if len(found) < limit:
        seen = {item["id"] for item in found}
        more = (await kb.search(SearchRequest(text=words, per_page=limit + len(found),
                                                  nothing_found_help=False)))["items"]
        found.extend(item for item in more if item["id"] not in seen)
    if not found and line:
        return await popular(runtime.pool, line=line, today=today, limit=limit)
    return [_shape(item) for item in found[:limit]]


def _shape(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"], "title": item["title"], "score": item["score"], "snippet": item["snippet"],
        "highlight": item["highlight"], "category": item["category"], "unit_code": item["unit_code"],
        "material_type": item["material_type"], "hotlines": item["hotlines"],
    }
