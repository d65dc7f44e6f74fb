"""Batches into the store: validation, COPY into a staging table, one merge
transaction, receipts and quarantine.

Idempotency is by ``(source, source_id, version)``: a record whose version is not
newer than the stored one changes nothing (``duplicate``); a newer version replaces
the stored record (``updated``); an unknown ``source_id`` is inserted
(``accepted``). A request replayed with the same signature gets the stored answer.
Everything a batch writes (records, receipts, quarantine, the batch row, the
change-log rows of the feed and the outbox) commits together or not at all, so a
server killed in the middle of a batch leaves nothing behind and the client's
resend lands exactly once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import asyncpg

from hotline.auth.audit import audit
from hotline.auth.model import User
from hotline.errors import Conflict, NotFound, ValidationError
from hotline.ingest import metrics
from hotline.ingest.keys import Source
from hotline.ingest.schema import (
    INT64_MAX,
    Context,
    Reason,
    event_time,
    printable,
    storable,
    validate,
)

#: (target column, staging type, record field)
_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "calls": (
        ("source_id", "text", "source_id"), ("version", "bigint", "version"), ("seq", "bigint", "seq"),
        ("hotline_number", "text", "hotline_number"), ("caller_number", "text", "caller_number"),
        ("state", "text", "state"), ("started_at", "timestamptz", "started_at"),
        ("answered_at", "timestamptz", "answered_at"), ("ended_at", "timestamptz", "ended_at"),
        ("wait_seconds", "numeric", "wait_seconds"), ("talk_seconds", "numeric", "talk_seconds"),
        ("agent", "text", "agent"), ("region", "text", "region"), ("unit_code", "text", "unit_code"),
        ("transfer_call_uid", "text", "transfer_call_uid"), ("ticket_source_id", "text", "ticket_source_id"),
    ),
    "tickets": (
        ("source_id", "text", "source_id"), ("version", "bigint", "version"), ("seq", "bigint", "seq"),
        ("hotline_number", "text", "hotline_number"), ("state", "text", "state"),
        ("created_at", "timestamptz", "created_at"), ("changed_at", "timestamptz", "updated_at"),
        ("category", "text", "category"), ("unit_code", "text", "unit_code"), ("region", "text", "region"),
        ("caller_number", "text", "caller_number"), ("summary", "text", "summary"),
        ("call_source_id", "text", "call_source_id"), ("dispatched_at", "timestamptz", "dispatched_at"),
        ("signed_at", "timestamptz", "signed_at"), ("replied_at", "timestamptz", "replied_at"),
        ("closed_at", "timestamptz", "closed_at"), ("satisfaction", "text", "satisfaction"),
    ),
}
#: what a record the database cannot store raises (the value's fault, not the server's):
#: PostgreSQL's data and constraint errors, and asyncpg's refusals while encoding
#: (a lone surrogate, an integer beyond int64). Anything else (deadlock, lost
#: connection) still fails the batch as a whole.
_RECORD_FAULTS: tuple[type[BaseException], ...] = (
    asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
    asyncpg.exceptions._base.DataError,  # asyncpg's own "invalid input" (not exported under another name)
    UnicodeError, OverflowError,
)
TABLES = {"calls": "subcenter_calls", "tickets": "subcenter_tickets"}
STAGES = {"calls": "ingest_stage_calls", "tickets": "ingest_stage_tickets"}


def _stage_ddl(kind: str) -> str:
    cols = ", ".join(f"{c} {t}" for c, t, _ in _COLUMNS[kind])
    # data travels as JSON text: asyncpg's binary COPY has no jsonb encoder with our codec
    return f"CREATE TEMP TABLE {STAGES[kind]} (idx integer, {cols}, data text) ON COMMIT DELETE ROWS"


def _merge_sql(kind: str) -> str:
    cols = [c for c, _, _ in _COLUMNS[kind]] + ["data"]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "source_id")
    return f"""
        INSERT INTO {TABLES[kind]} (source, {", ".join(cols)}, batch_id, received_at)
        SELECT $1, {", ".join(c if c != "data" else "data::jsonb" for c in cols)}, $2, $3 FROM {STAGES[kind]}
        ORDER BY source_id  -- one lock order for every batch: overlapping batches cannot deadlock
        ON CONFLICT (source, source_id) DO UPDATE
           SET {updates}, batch_id = EXCLUDED.batch_id, received_at = EXCLUDED.received_at
         WHERE {TABLES[kind]}.version < EXCLUDED.version
        RETURNING source_id, (xmax = 0) AS inserted"""  # noqa: S608 (identifiers from constants)


@dataclass(slots=True)
class Item:
    """One record of a batch: its index, what was sent, and (when valid) the clean form."""

    index: int
    raw: Any
    clean: dict[str, Any] | None
    reasons: list[Reason]
    status: str = ""
    note: str | None = None
    quarantine_id: int | None = None

    @property
    def source_id(self) -> str | None:
        if self.clean is not None:
            return str(self.clean["source_id"])
        value = self.raw.get("source_id") if isinstance(self.raw, dict) else None
        return printable(str(value)) if value is not None else None

    @property
    def version(self) -> int | None:
        if self.clean is not None:
            return int(self.clean["version"])
        value = self.raw.get("version") if isinstance(self.raw, dict) else None
        try:
            number = int(value) if value is not None else None
        except (TypeError, ValueError, OverflowError):
            return None
        return number if number is None or abs(number) <= INT64_MAX else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status,
                               "source_id": self.source_id, "version": self.version}
        if self.note:
            out["note"] = self.note
        if self.reasons:
            out["reasons"] = [r.to_json() for r in self.reasons]
        if self.quarantine_id is not None:
            out["quarantine_id"] = self.quarantine_id
        return out


async def validation_context(conn: asyncpg.Connection | asyncpg.Pool, source: Source) -> Context:
    lines = await conn.fetchval("SELECT array_agg(number) FROM hotlines WHERE active")
    return Context(lines=frozenset(lines or ()), allowed_lines=frozenset(source.hotline_numbers))


def _json_safe(raw: Any) -> Any:
    return storable(raw if isinstance(raw, dict) else {"_value": raw})


def _stored_data(item: Item) -> dict[str, Any]:
    """What ``data`` keeps beside the typed columns: the fields the schema does not
    know, and a caller number as sent when normalising changed it."""
    assert item.clean is not None
    data = dict(item.clean["_extra"])
    sent = item.raw.get("caller_number") if isinstance(item.raw, dict) else None
    if sent not in (None, "") and str(sent).strip() != item.clean.get("caller_number"):
        data["caller_raw"] = str(sent)
    return data


def _stored_json(item: Item) -> str:
    data = _stored_data(item)
    return json.dumps(data, ensure_ascii=False) if data else "{}"


async def _ensure_stage(conn: asyncpg.Connection, kind: str) -> None:
    if await conn.fetchval("SELECT to_regclass($1)", f"pg_temp.{STAGES[kind]}") is None:
        await conn.execute(_stage_ddl(kind))


async def merge_items(
    conn: asyncpg.Connection, source: Source, kind: str, items: Sequence[Item], batch_id: int, received_at: datetime,
    *, quarantine: bool = True,
) -> None:
    """Inside the caller's transaction: merge the valid items, record receipts and
    quarantine the rest (unless ``quarantine`` is false: the caller keeps them). Sets
    ``status`` (and ``quarantine_id``) on every item; a record the database refused
    is ``rejected`` with the database's reason."""
    good = [i for i in items if i.clean is not None]
    # Inside one batch the highest version of a source_id wins; the others change nothing.
    best: dict[str, Item] = {}
    for item in good:
        assert item.clean is not None
        current = best.get(item.clean["source_id"])
        if current is None or item.clean["version"] > current.clean["version"]:  # type: ignore[index]
            best[item.clean["source_id"]] = item
    winners = set(map(id, best.values()))
    for item in good:
        if id(item) not in winners:
            item.status, item.note = "duplicate", "superseded by a higher version in the same batch"

    if best:
        await _ensure_stage(conn, kind)
        try:
            async with conn.transaction():  # a savepoint: one poison record must not fail the batch
                outcome = await _merge(conn, source, kind, list(best.values()), batch_id, received_at)
        except _RECORD_FAULTS:
            outcome = await _merge_one_by_one(conn, source, kind, best, batch_id, received_at)
        stored_versions: dict[str, int] = {}
        missing = [sid for sid in best if sid not in outcome]
        if missing:
            stored_versions = {
                r["source_id"]: r["version"]
                for r in await conn.fetch(
                    f"SELECT source_id, version FROM {TABLES[kind]} WHERE source = $1 AND source_id = ANY($2)",  # noqa: S608
                    source.code, missing,
                )
            }
        for sid, item in best.items():
            if sid in outcome:
                item.status = outcome[sid]
            else:
                item.status = "duplicate"
                stored = stored_versions.get(sid)
                if stored is not None and stored > item.clean["version"]:  # type: ignore[index]
                    item.note = f"older than the stored version {stored}"
        # the records now stored supersede the open quarantine entries they replace
        landed = [(sid, it.clean["version"]) for sid, it in best.items() if it.status != "duplicate"]  # type: ignore[index]
        if landed:
            await conn.execute(
                """UPDATE ingest_quarantine q
                      SET status = 'superseded', resolved_at = now(),
                          resolution = jsonb_build_object('batch_id', $3::bigint)
                     FROM unnest($4::text[], $5::bigint[]) AS l(source_id, version)
                    WHERE q.status = 'open' AND q.source = $1 AND q.kind = $2
                      AND q.source_id = l.source_id AND coalesce(q.version, 0) <= l.version""",
                source.code, kind, batch_id, [s for s, _ in landed], [v for _, v in landed],
            )
        await conn.copy_records_to_table(
            "ingest_receipts",
            records=[
                (batch_id, source.code, kind, it.clean["source_id"], it.clean["version"], it.clean["seq"],
                 event_time(kind, it.clean), received_at, it.status)
                for it in good if it.clean is not None  # not the records the database refused
            ],
            columns=["batch_id", "source", "kind", "source_id", "version", "seq", "event_at", "received_at",
                     "outcome"],
        )

    bad = [i for i in items if i.clean is None]
    for item in bad:
        item.status = "rejected"
    if bad and quarantine:
        ids = await conn.fetch(
            """INSERT INTO ingest_quarantine (source, kind, batch_id, record_index, source_id, version,
                                              record, reasons, received_at)
               SELECT $1, $2, $3, r.idx, r.source_id, r.version, r.record::jsonb, r.reasons::jsonb, $4
                 FROM unnest($5::int[], $6::text[], $7::bigint[], $8::text[], $9::text[])
                      AS r(idx, source_id, version, record, reasons)
               ORDER BY r.idx
               RETURNING id, record_index""",
            source.code, kind, batch_id, received_at,
            [i.index for i in bad], [i.source_id for i in bad], [i.version for i in bad],
            [json.dumps(_json_safe(i.raw), ensure_ascii=False) for i in bad],
            [json.dumps([r.to_json() for r in i.reasons], ensure_ascii=False) for i in bad],
        )
        by_index = {r["record_index"]: r["id"] for r in ids}
        for item in bad:
            item.quarantine_id = by_index.get(item.index)


async def _merge(
    conn: asyncpg.Connection, source: Source, kind: str, items: Sequence[Item], batch_id: int, received_at: datetime
) -> dict[str, str]:
    """COPY ``items`` into the staging table and merge them: ``{source_id: accepted|updated}``
    for the records written (a record not newer than the stored one is absent)."""
    columns = _COLUMNS[kind]
    values = itemgetter(*(field for _, _, field in columns))
    rows = [(item.index, *values(item.clean), _stored_json(item)) for item in items]  # type: ignore[arg-type]
    await conn.copy_records_to_table(STAGES[kind], records=rows, columns=["idx", *(c for c, _, _ in columns), "data"])
    merged = await conn.fetch(_merge_sql(kind), source.code, batch_id, received_at)
    return {r["source_id"]: ("accepted" if r["inserted"] else "updated") for r in merged}


async def _merge_one_by_one(
    conn: asyncpg.Connection, source: Source, kind: str, best: dict[str, Item], batch_id: int, received_at: datetime
) -> dict[str, str]:
    """After the batch's merge failed on a value: each record in its own savepoint.
    A record the database refuses leaves ``best`` and becomes a rejected item with the
    database's reason (it is quarantined with the batch's other rejected records)."""
    outcome: dict[str, str] = {}
    for sid in sorted(best):  # the bulk merge's lock order
        item = best[sid]
        try:
            async with conn.transaction():
                outcome.update(await _merge(conn, source, kind, [item], batch_id, received_at))
                await conn.execute(f"DELETE FROM {STAGES[kind]}")  # noqa: S608 (a constant)
        except _RECORD_FAULTS as exc:
            del best[sid]
            item.clean = None
            item.reasons = [Reason(None, "database", f"数据库拒绝了这条记录："
                                   f"{type(exc).__name__}: {printable(str(exc))}")]
    return outcome


def _counts(items: Sequence[Item]) -> dict[str, int]:
    counts = {"accepted": 0, "updated": 0, "duplicate": 0, "rejected": 0}
    for item in items:
        counts[item.status] += 1
    return counts


async def ingest_batch(
    pool: asyncpg.Pool,
    source: Source,
    kind: str,
    records: Sequence[Any],
    *,
    signature: str,
    signed_at: datetime,
    fmt: str,
) -> tuple[dict[str, Any], bool]:
    """Validate and merge one batch: ``(response, replayed)``. A transaction that loses a
    deadlock or serialization conflict is retried (everything is rolled back first)."""
    for attempt in range(3):
        try:
            return await _ingest_once(pool, source, kind, records, signature=signature, signed_at=signed_at,
                                      fmt=fmt)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _ingest_once(
    pool: asyncpg.Pool,
    source: Source,
    kind: str,
    records: Sequence[Any],
    *,
    signature: str,
    signed_at: datetime,
    fmt: str,
) -> tuple[dict[str, Any], bool]:
    async with pool.acquire() as conn:
        ctx = await validation_context(conn, source)
        items = []
        for index, raw in enumerate(records):
            clean, reasons = validate(kind, raw, ctx)
            items.append(Item(index, raw, clean, reasons))
        async with conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO ingest_batches (source, kind, signature, signed_at, format, records,
                                               accepted, updated, duplicate, rejected, response)
                   VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, '{}')
                   ON CONFLICT (source, signature) DO NOTHING
                   RETURNING id, received_at""",
                source.code, kind, signature, signed_at, fmt, len(items),
            )
            if row is None:
                stored = await conn.fetchrow(
                    "SELECT id, response FROM ingest_batches WHERE source = $1 AND signature = $2",
                    source.code, signature,
                )
                await conn.execute(
                    "INSERT INTO ingest_replays (source, batch_id) VALUES ($1, $2)", source.code, stored["id"]
                )
                metrics.REQUESTS.labels(source.code, "replayed").inc()
                return stored["response"], True
            batch_id, received_at = row["id"], row["received_at"]
            await merge_items(conn, source, kind, items, batch_id, received_at)
            counts = _counts(items)
            response = {
                "batch_id": batch_id, "source": source.code, "kind": kind, "format": fmt,
                "received_at": received_at.isoformat(), "counts": counts,
                "results": [i.to_json() for i in items],
            }
            await conn.execute(
                """UPDATE ingest_batches SET accepted = $2, updated = $3, duplicate = $4, rejected = $5,
                                             response = $6 WHERE id = $1""",
                batch_id, counts["accepted"], counts["updated"], counts["duplicate"], counts["rejected"],
                response,
            )
    for outcome, n in counts.items():
        if n:
            metrics.RECORDS.labels(source.code, kind, outcome).inc(n)
    metrics.REQUESTS.labels(source.code, "ok").inc()
    return response, False


# ---- quarantine -------------------------------------------------------------------

async def list_quarantine(
    pool: asyncpg.Pool, *, source: str | None, kind: str | None, status: str | None, limit: int, before: int | None
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT id, source, kind, batch_id, record_index, source_id, version, record, reasons, status,
                  received_at, resolved_at, resolved_by, resolution
             FROM ingest_quarantine
            WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR kind = $2)
              AND ($3::text IS NULL OR status = $3) AND ($4::bigint IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5""",
        source, kind, status, before, limit,
    )
    return [dict(r) for r in rows]


async def reprocess(
    pool: asyncpg.Pool, quarantine_id: int, *, record: dict[str, Any] | None = None, user: User | None = None,
    remote_addr: str | None = None, bulk: bool = False,
) -> dict[str, Any]:
    """Validate a quarantined record again (as stored, or as corrected by ``record``);
    when it passes, merge it like a one-record batch and close the entry. When it
    still fails, the entry stays open with the new reasons. Who did it is audited in
    the same transaction (``quarantine_reprocessed``)."""
    async with pool.acquire() as conn, conn.transaction():
        result = await _reprocess(conn, quarantine_id, record, user.id if user is not None else None)
        if user is not None:
            await audit(conn, "quarantine_reprocessed", user=user, object_type="ingest_quarantine",
                        object_id=quarantine_id, remote_addr=remote_addr,
                        detail={"outcome": result["outcome"], "corrected": record is not None, "bulk": bulk})
        return result


async def _reprocess(conn: asyncpg.Connection, quarantine_id: int, record: dict[str, Any] | None,
                     user_id: int | None) -> dict[str, Any]:
    entry = await conn.fetchrow("SELECT * FROM ingest_quarantine WHERE id = $1 FOR UPDATE", quarantine_id)
    if entry is None:
        raise NotFound(f"没有隔离记录 {quarantine_id}", field="id")
    if entry["status"] != "open":
        raise Conflict(f"隔离记录 {quarantine_id} 已处理（{entry['status']}）",
                       field="id", status_now=entry["status"])
    src_row = await conn.fetchrow("SELECT * FROM ingest_sources WHERE code = $1", entry["source"])
    source = Source.from_row(src_row)
    raw = record if record is not None else entry["record"]
    if not isinstance(raw, dict):
        raise ValidationError(f"record 必须是 JSON 对象，收到 {type(raw).__name__} 类型的值", field="record")
    kind = entry["kind"]
    clean, reasons = validate(kind, raw, await validation_context(conn, source))
    if clean is None:
        await conn.execute("UPDATE ingest_quarantine SET reasons = $2 WHERE id = $1",
                           quarantine_id, [r.to_json() for r in reasons])
        return {"id": quarantine_id, "status": "open", "outcome": "rejected",
                "reasons": [r.to_json() for r in reasons]}
    batch = await conn.fetchrow(
        """INSERT INTO ingest_batches (source, kind, signature, signed_at, format, records,
                                       accepted, updated, duplicate, rejected, response)
           VALUES ($1, $2, $3, now(), 'reprocess', 1, 0, 0, 0, 0, '{}') RETURNING id, received_at""",
        source.code, kind, f"reprocess:{quarantine_id}:{uuid.uuid4().hex}",
    )
    item = Item(entry["record_index"] or 0, raw, clean, [])
    await merge_items(conn, source, kind, [item], batch["id"], batch["received_at"], quarantine=False)
    counts = _counts([item])
    if item.status == "rejected":  # the database refused it: the entry stays open with that reason
        await conn.execute("UPDATE ingest_batches SET rejected = 1, response = $2 WHERE id = $1",
                           batch["id"], {"batch_id": batch["id"], "results": [item.to_json()], "counts": counts})
        await conn.execute("UPDATE ingest_quarantine SET reasons = $2 WHERE id = $1",
                           quarantine_id, [r.to_json() for r in item.reasons])
        return {"id": quarantine_id, "status": "open", "outcome": "rejected",
                "reasons": [r.to_json() for r in item.reasons]}
    await conn.execute(
        """UPDATE ingest_batches SET accepted = $2, updated = $3, duplicate = $4, response = $5
            WHERE id = $1""",
        batch["id"], counts["accepted"], counts["updated"], counts["duplicate"],
        {"batch_id": batch["id"], "results": [item.to_json()], "counts": counts},
    )
    resolution = {"batch_id": batch["id"], "outcome": item.status, "corrected": record is not None}
    await conn.execute(
        """UPDATE ingest_quarantine SET status = 'reprocessed', resolved_at = now(), resolved_by = $2,
                                        resolution = $3, reasons = reasons
            WHERE id = $1""",
        quarantine_id, user_id, resolution,
    )
    return {"id": quarantine_id, "status": "reprocessed", "outcome": item.status, "batch_id": batch["id"]}


async def reprocess_open(
    pool: asyncpg.Pool, *, source: str | None = None, kind: str | None = None, user: User | None = None,
    remote_addr: str | None = None, limit: int = 1000,
) -> dict[str, Any]:
    """Try every open entry again as stored (after a fix of reference data, e.g. the registry)."""
    ids = await pool.fetch(
        """SELECT id FROM ingest_quarantine
            WHERE status = 'open' AND ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR kind = $2)
            ORDER BY id LIMIT $3""",
        source, kind, limit,
    )
    results = [await reprocess(pool, r["id"], user=user, remote_addr=remote_addr, bulk=True) for r in ids]
    landed = sum(1 for r in results if r["status"] == "reprocessed")
    return {"tried": len(results), "reprocessed": landed, "still_open": len(results) - landed, "results": results}


async def discard(pool: asyncpg.Pool, quarantine_id: int, *, user: User, note: str,
                  remote_addr: str | None = None) -> None:
    """Close an entry that will never be fixed, with the note saying why (audited with it)."""
    async with pool.acquire() as conn, conn.transaction():
        done = await conn.fetchval(
            """UPDATE ingest_quarantine SET status = 'discarded', resolved_at = now(), resolved_by = $2,
                                            resolution = jsonb_build_object('note', $3::text)
                WHERE id = $1 AND status = 'open' RETURNING id""",
            quarantine_id, user.id, note,
        )
        if done is None:
            raise Conflict(f"隔离记录 {quarantine_id} 不是待处理状态", field="id")
        await audit(conn, "quarantine_discarded", user=user, object_type="ingest_quarantine",
                    object_id=quarantine_id, detail={"note": note}, remote_addr=remote_addr)
