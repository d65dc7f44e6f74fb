"""Reading the change log in a commit-safe order.

Rows are ordered by ``(txid, id)`` and only rows of transactions older than the
oldest transaction still running (``pg_snapshot_xmin(pg_current_snapshot())``)
are handed out. A transaction that commits later always has a txid at or above
that horizon, so its rows sort after everything already delivered: a cursor
``(txid, id)`` can neither skip a late commit nor repeat a row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hotline.errors import HotlineError, ValidationError
from hotline.masking import mask_data

ENTITIES = ("call", "ticket", "subcenter_call", "subcenter_ticket", "kb_article", "kb_lexicon")
_CURSOR_RE = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
#: values masked in the feed (the feed's readers do not need callers' identities)

class CursorExpired(HotlineError):
    """The cursor points before the pruned part of the change log."""

    code = "cursor_expired"
    status = 410


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    txid: int
    id: int

    def __str__(self) -> str:
        return f"{self.txid}-{self.id}"

    @classmethod
    def parse(cls, text: str, *, field: str = "cursor") -> Cursor:
        match = _CURSOR_RE.match(text.strip())
        if text.strip() == "0":
            return START
        if not match:
            raise ValidationError(f"游标 {field} 须为 <txid>-<id> 格式（0 表示从头开始），收到 {text!r}",
                                  field=field, value=text, code="invalid_cursor")
        return cls(int(match.group(1)), int(match.group(2)))


START = Cursor(0, 0)


@dataclass(frozen=True, slots=True)
class Change:
    cursor: Cursor
    entity: str
    entity_id: int
    op: str
    at: datetime
    data: dict[str, Any]

    def to_json(self, *, masked: bool = True) -> dict[str, Any]:
        return {
            "cursor": str(self.cursor), "entity": self.entity, "id": self.entity_id, "op": self.op,
            "at": self.at.isoformat(), "data": mask_data(self.data) if masked else self.data,
        }


def parse_entities(text: str | None) -> list[str] | None:
    if not text:
        return None
    wanted = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in wanted if e not in ENTITIES]
    if unknown:
        raise ValidationError(f"未知的实体 {'、'.join(unknown)}；可选：{'、'.join(ENTITIES)}", field="entities",
                              value=unknown, code="invalid_choice")
    return wanted


async def head(conn: asyncpg.Connection | asyncpg.Pool) -> Cursor:
    """The position of the newest committed-and-safe change ("from now")."""
    row = await conn.fetchrow(
        """SELECT txid::text AS txid, id FROM change_log
            WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY txid DESC, id DESC LIMIT 1"""
    )
    if row is None:
        horizon = await conn.fetchrow("SELECT txid::text AS txid, change_id FROM change_log_horizon")
        return Cursor(int(horizon["txid"]), horizon["change_id"]) if horizon else START
    return Cursor(int(row["txid"]), row["id"])


async def check_cursor(conn: asyncpg.Connection | asyncpg.Pool, cursor: Cursor) -> None:
    row = await conn.fetchrow("SELECT txid::text AS txid, change_id, pruned_at FROM change_log_horizon")
    if row is None or row["pruned_at"] is None or cursor == START:
        return
    if cursor < Cursor(int(row["txid"]), row["change_id"]):
        raise CursorExpired(f"cursor {cursor} is older than the retained change log; start again from 0",
                            field="cursor")


async def fetch_after(
    conn: asyncpg.Connection | asyncpg.Pool, cursor: Cursor, *, limit: int = 500,
    entities: Sequence[str] | None = None,
) -> tuple[list[Change], bool]:
    """``(changes after cursor in order, held)``; ``held`` means newer rows exist that
    are not safe to hand out yet (an older transaction is still running)."""
    rows = await conn.fetch(
        """SELECT c.id, c.txid::text AS txid, c.at, c.entity, c.entity_id, c.op, c.data,
                  c.txid < s.xmin AS safe
             FROM change_log c, (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s
            WHERE (c.txid, c.id) > ($1::text::xid8, $2::bigint)
              AND ($3::text[] IS NULL OR c.entity = ANY($3))
            ORDER BY c.txid, c.id LIMIT $4""",
        str(cursor.txid), cursor.id, list(entities) if entities else None, limit,
    )
    changes: list[Change] = []
    for r in rows:
        if not r["safe"]:
            return changes, True
        changes.append(Change(Cursor(int(r["txid"]), r["id"]), r["entity"], r["entity_id"], r["op"], r["at"],
                              r["data"]))
    return changes, False


async def prune(conn: asyncpg.Connection, *, older_than_days: int, keep_after: Cursor | None) -> int:
    """Delete changes older than the retention (never past ``keep_after``, the upstream
    worker's cursor) and move the horizon so expired cursors are refused."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """SELECT txid::text AS txid, id FROM change_log
                WHERE at < now() - make_interval(days => $1)
                  AND txid < pg_snapshot_xmin(pg_current_snapshot())
                  AND ($2::text IS NULL OR (txid, id) <= ($2::text::xid8, $3::bigint))
                ORDER BY txid DESC, id DESC LIMIT 1""",
            older_than_days, str(keep_after.txid) if keep_after else None, keep_after.id if keep_after else 0,
        )
        if row is None:
            return 0
        deleted = await conn.execute(
            "DELETE FROM change_log WHERE (txid, id) <= ($1::text::xid8, $2::bigint)", row["txid"], row["id"]
        )
        await conn.execute(
            "UPDATE change_log_horizon SET txid = $1::text::xid8, change_id = $2, pruned_at = now()",
            row["txid"], row["id"],
        )
        return int(deleted.split()[-1])
