"""What the knowledge base offers without words: a line's most-read live articles (hot
Q&A first) and its categories, from PostgreSQL (views are counted there, not in the
index). The screen-pop uses them before the caller has said anything; a search that
found nothing relevant offers them to the agent still on the call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline.kb.db import Db

_LIVE = """state = 'published' AND valid_from <= $1 AND (valid_to IS NULL OR valid_to >= $1)
           AND ($2::text IS NULL OR $2 = ANY(hotlines))"""


async def popular(db: Db, *, line: str | None, today: dt.date, limit: int = 5) -> list[dict[str, Any]]:
    """The most-read live articles of ``line`` (every line: ``None``)."""
    rows = await db.fetch(
        f"""SELECT id, title, body, category, unit_code, material_type, hotlines
              FROM kb_articles
             WHERE {_LIVE}
             ORDER BY views DESC, (material_type = '热点问答') DESC, updated_at DESC, id
             LIMIT $3""",  # noqa: S608 (constant text)
        today, line, limit)
    out = []
    for r in rows:
        body = " ".join(r["body"].replace("**", "").split())
        out.append({"id": r["id"], "title": r["title"], "score": 0.0,
                    "snippet": body[:120] + ("…" if len(body) > 120 else ""), "highlight": None,
                    "category": r["category"], "unit_code": r["unit_code"],
                    "material_type": r["material_type"], "hotlines": list(r["hotlines"])})
    return out


async def categories(db: Db, *, line: str | None, today: dt.date, limit: int = 8) -> list[dict[str, Any]]:
    """The top-level categories of ``line``'s live articles, the largest first:
    ``[{"category": "住房公积金", "count": 12}]``."""
    rows = await db.fetch(
        f"""SELECT split_part(category, '/', 1) AS category, count(*) AS n
              FROM kb_articles
             WHERE {_LIVE}
             GROUP BY 1 ORDER BY n DESC, 1
             LIMIT $3""",  # noqa: S608 (constant text)
        today, line, limit)
    return [{"category": r["category"], "count": r["n"]} for r in rows]
