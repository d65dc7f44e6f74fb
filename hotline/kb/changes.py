"""The knowledge base on the shared change stream (``change_log``, the feed's).

Writers call :func:`record` inside the transaction of the change: one row per
article (entity ``kb_article``, ``entity_id`` = the article's ``num``, data
``{"id": ...}``) or lexicon entry (entity ``kb_lexicon``), and a ``kb.changed``
notification delivered at commit. Readers (every node's index, see
:mod:`hotline.kb.engine`) take rows in commit-safe ``(txid, id)`` order with
:func:`hotline.feed.changes.fetch_after`, so no lock serialises KB writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from hotline.events import Topic, publish
from hotline.feed.changes import Change, Cursor

TOPIC = Topic.KB_CHANGED
ARTICLE = "kb_article"
LEXICON = "kb_lexicon"
ENTITIES = (ARTICLE, LEXICON)


async def record_articles(conn: asyncpg.Connection, article_ids: Sequence[str], *, op: str = "update") -> None:
    """Note that these articles changed (inside the caller's transaction) and announce it."""
    if not article_ids:
        return
    await conn.execute(
        """INSERT INTO change_log (entity, entity_id, op, data)
           SELECT $1, a.num, $2, json_build_object('id', a.id)
             FROM kb_articles a WHERE a.id = ANY($3::text[]) ORDER BY a.id""",
        ARTICLE, op, list(article_ids))
    await publish(conn, TOPIC, {"entity": ARTICLE})


async def record_lexicon(conn: asyncpg.Connection, entry_ids: Sequence[int], *, kinds: Sequence[str]) -> None:
    """Note that lexicon entries changed what nodes search with (published or withdrawn)."""
    if not entry_ids:
        return
    await conn.execute(
        """INSERT INTO change_log (entity, entity_id, op, data)
           SELECT $1, e, 'update', json_build_object('kinds', $3::text[]) FROM unnest($2::bigint[]) AS e""",
        LEXICON, list(entry_ids), sorted(set(kinds)))
    await publish(conn, TOPIC, {"entity": LEXICON})


async def read_after(db: asyncpg.Pool | asyncpg.Connection, position: Cursor, *,
                     limit: int) -> tuple[list[Change], Cursor | None]:
    """Every committed KB change after ``position`` in ``(txid, id)`` order, including
    rows that sort after a transaction still running, and the position of the last
    row before the first such gap (``None``: no row is safe yet).

    The index may apply them all at once: applying a change re-reads the article, so
    applying one twice is harmless. It must only not *skip* one, so its cursor stays at
    the safe position and the rows after it are read (and applied) again until the
    older transaction ends. A publish is searchable at once even while, say, an
    autovacuum ANALYZE holds the horizon back."""
    rows = await db.fetch(
        """SELECT c.id, c.txid::text AS txid, c.at, c.entity, c.entity_id, c.op, c.data,
                  c.txid < s.xmin AS safe
             FROM change_log c, (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s
            WHERE (c.txid, c.id) > ($1::text::xid8, $2::bigint) AND c.entity = ANY($3::text[])
            ORDER BY c.txid, c.id LIMIT $4""",
        str(position.txid), position.id, list(ENTITIES), limit)
    out: list[Change] = []
    safe: Cursor | None = None
    gap = False
    for r in rows:
        change = Change(Cursor(int(r["txid"]), r["id"]), r["entity"], r["entity_id"], r["op"], r["at"],
                        r["data"] if isinstance(r["data"], dict) else json.loads(r["data"]))
        out.append(change)
        if not r["safe"]:
            gap = True
        elif not gap:
            safe = change.cursor
    return out, safe
