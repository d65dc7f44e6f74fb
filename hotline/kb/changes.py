"""The knowledge base on the shared change stream (``change_log``, the feed's).

Writers call :func:`record` inside the transaction of the change: one row per
article (entity ``kb_article``, ``entity_id`` = the article's ``num``, data
``{"id": ...}``) or lexicon entry (entity ``kb_lexicon``), and a ``kb.changed``
notification delivered at commit. Readers (every node's index, see
:mod:`hotline.kb.engine`) take rows in commit-safe ``(txid, id)`` order with
:func:`hotline.feed.changes.fetch_after`, so no lock serialises KB writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from hotline.events import publish

TOPIC = "kb.changed"
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
