"""What the knowledge base offers without words: a line's most-read live articles (hot
Q&A first), from PostgreSQL (views are counted there, not in the index). The
screen-pop uses them before the caller has said anything; a search that found nothing
relevant offers them to the agent still on the call (with the line's categories, which
come from the index: see :meth:`hotline.kb.generation.Generation.categories`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline.kb.db import Db

_LIVE = """state = 'published' AND valid_from <= $1 AND (valid_to IS NULL OR valid_to >= $1)
           AND ($2::text IS NULL OR $2 = ANY(hotlines))"""


async def popular(db: Db, *, line: str | None, today: dt.date, limit: int = 5) -> list[dict[str, Any]]:
    """The most-read live articles of ``line`` (every line: ``None``)."""
    # the sort sees only the small columns (a line's live articles can be 10,000s of rows)
    rows = await db.fetch(
        f"""SELECT a.id, a.title, left(a.body, 400) AS body, a.category, a.unit_code, a.material_type, a.hotlines
              FROM (SELECT id FROM kb_articles
                     WHERE {_LIVE}
                     ORDER BY views DESC, (material_type = '热点问答') DESC, updated_at DESC, id
                     LIMIT $3) AS top
              JOIN kb_articles a USING (id)
             ORDER BY a.views DESC, (a.material_type = '热点问答') DESC, a.updated_at DESC, a.id""",  # noqa: S608
        today, line, limit)
    out = []
    for r in rows:
        body = " ".join(r["body"].replace("**", "").split())
        out.append({"id": r["id"], "title": r["title"], "score": 0.0,
                    "snippet": body[:120] + ("…" if len(body) > 120 else ""), "highlight": None,
                    "category": r["category"], "unit_code": r["unit_code"],
                    "material_type": r["material_type"], "hotlines": list(r["hotlines"])})
    return out
