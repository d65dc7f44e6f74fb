"""The upstream worker: drains the outbox in order.

Failures are of two kinds:

* the platform is **unreachable** (connection refused, timeout, HTTP 502/503/504,
  429): nothing is wrong with the records, so nothing is counted against them; the
  worker waits with exponential backoff (capped) and resends the same changes, in
  the same order, until the platform is back — an hour's outage loses nothing;
* the platform **refuses** (any other non-2xx answer): a batch is split into single
  records to find the culprit; a record refused ``max_attempts`` times goes to
  ``upstream_dead_letters`` with the last error, and the queue moves on.

Each change carries an idempotency key (``hotline:<txid>-<id>``, stable across
resends) so the platform can drop a change it has already applied — a resend after
a lost answer is the normal case of at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import asyncpg

from hotline.config import read_secret
from hotline.db.locks import LockKey, run_on_one_node, wait_or_stop
from hotline.feed.changes import Change, Cursor, fetch_after
from hotline.jsoncodec import dumps
from hotline.outbound import SendResult, post_json, public_endpoint, signed_headers
from hotline.outbound import backoff as _backoff
from hotline.upstream import metrics
from hotline.upstream.config import UpstreamSettings

log = logging.getLogger(__name__)


def idempotency_key(change: Change) -> str:
    return f"hotline:{change.cursor}"


def payload(change: Change) -> dict[str, Any]:
    return {
        "idempotency_key": idempotency_key(change), "entity": change.entity, "id": change.entity_id,
        "op": change.op, "changed_at": change.at.isoformat(), "data": change.data,
    }


def backoff(cfg: UpstreamSettings, failures: int) -> float:
    return _backoff(cfg.backoff_base, cfg.backoff_max, failures)


class UpstreamWorker:
    def __init__(self, pool: asyncpg.Pool, cfg: UpstreamSettings, *, wake: asyncio.Event | None = None) -> None:
        self.pool = pool
        self.cfg = cfg
        self.session: aiohttp.ClientSession | None = None
        self.outage = 0  # consecutive "unavailable" answers
        self._isolate_until: Cursor | None = None  # send singly up to here (a batch was refused)
        self._key = read_secret(cfg.key_env) if cfg.key_env else None
        self.wake = wake

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def send(self, changes: Sequence[Change]) -> SendResult:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        body = dumps({"records": [payload(c) for c in changes]}).encode()
        key = idempotency_key(changes[0]) if len(changes) == 1 else \
            f"hotline:{changes[0].cursor}..{changes[-1].cursor}"
        return await post_json(self.session, self.cfg.url, body, signed_headers(body, self.cfg.url, key, self._key))

    async def step(self) -> str:
        """One round: ``sent``, ``idle``, ``waiting`` (backing off), ``failed`` or ``dead``."""
        await self._requeued()
        async with self.pool.acquire() as conn:
            state = await conn.fetchrow(
                """SELECT cursor_txid::text AS cursor_txid, cursor_id, head_attempts,
                          coalesce(next_attempt_at > now(), false) AS waiting FROM upstream_state"""
            )
            if state["waiting"]:
                return "waiting"
            cursor = Cursor(int(state["cursor_txid"]), state["cursor_id"])
            changes, _ = await fetch_after(conn, cursor, limit=self.cfg.batch_size, entities=self.cfg.entities)
        if not changes:
            metrics.BACKLOG.set(0)
            metrics.LAG.set(0)
            return "idle"
        single = state["head_attempts"] > 0 or (
            self._isolate_until is not None and changes[0].cursor <= self._isolate_until)
        batch = changes[:1] if single else changes
        result = await self.send(batch)
        async with self.pool.acquire() as conn, conn.transaction():
            if result.ok:
                self.outage = 0
                await conn.execute(
                    """UPDATE upstream_state
                          SET cursor_txid = $1::text::xid8, cursor_id = $2, head_change_id = NULL, head_attempts = 0,
                              next_attempt_at = NULL, last_success_at = now(), last_attempt_at = now(),
                              sent_total = sent_total + $3, updated_at = now()""",
                    str(batch[-1].cursor.txid), batch[-1].cursor.id, len(batch),
                )
                metrics.SENT.inc(len(batch))
                metrics.HEAD_ATTEMPTS.set(0)
                await self._gauges(conn)
                return "sent"
            metrics.FAILURES.labels(result.kind).inc()
            if result.kind == "unavailable":
                self.outage += 1
                await conn.execute(
                    """UPDATE upstream_state SET last_error = $1, last_attempt_at = now(), updated_at = now(),
                              next_attempt_at = now() + make_interval(secs => $2)""",
                    result.error, backoff(self.cfg, self.outage),
                )
                log.warning("upstream unavailable (%d in a row): %s", self.outage, result.error)
                return "failed"
            self.outage = 0
            if len(batch) > 1:
                self._isolate_until = batch[-1].cursor
                await conn.execute(
                    "UPDATE upstream_state SET last_error = $1, last_attempt_at = now(), updated_at = now()",
                    result.error,
                )
                return "failed"
            head = batch[0]
            attempts = state["head_attempts"] + 1
            metrics.HEAD_ATTEMPTS.set(attempts)
            if attempts < self.cfg.max_attempts:
                await conn.execute(
                    """UPDATE upstream_state SET head_change_id = $1, head_attempts = $2, last_error = $3,
                              last_attempt_at = now(), updated_at = now(),
                              next_attempt_at = now() + make_interval(secs => $4)""",
                    head.cursor.id, attempts, result.error, backoff(self.cfg, attempts),
                )
                return "failed"
            await conn.execute(
                """INSERT INTO upstream_dead_letters (change_id, change_txid, entity, entity_id, op, data,
                                                     changed_at, attempts, last_error)
                   VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7, $8, $9)""",
                head.cursor.id, str(head.cursor.txid), head.entity, head.entity_id, head.op, head.data, head.at,
                attempts, result.error,
            )
            await conn.execute(
                """UPDATE upstream_state
                      SET cursor_txid = $1::text::xid8, cursor_id = $2, head_change_id = NULL, head_attempts = 0,
                          next_attempt_at = NULL, last_error = $3, last_attempt_at = now(),
                          dead_total = dead_total + 1, updated_at = now()""",
                str(head.cursor.txid), head.cursor.id, result.error,
            )
            metrics.DEAD_LETTERS.inc()
            metrics.HEAD_ATTEMPTS.set(0)
            log.error("upstream refused change %s %d times; moved to dead-letter: %s",
                      head.cursor, attempts, result.error)
            return "dead"

    async def _requeued(self) -> None:
        """Dead letters an operator put back are sent before the queue moves on."""
        rows = await self.pool.fetch(
            """SELECT id, change_id, change_txid::text AS txid, entity, entity_id, op, data, changed_at
                 FROM upstream_dead_letters WHERE status = 'requeued' ORDER BY id LIMIT $1""",
            self.cfg.batch_size,
        )
        for r in rows:
            change = Change(Cursor(int(r["txid"]), r["change_id"]), r["entity"], r["entity_id"], r["op"],
                            r["changed_at"], r["data"])
            result = await self.send([change])
            if result.ok:
                await self.pool.execute(
                    "UPDATE upstream_dead_letters SET status = 'sent', resolved_at = now() WHERE id = $1", r["id"])
                metrics.SENT.inc()
            else:
                await self.pool.execute(
                    """UPDATE upstream_dead_letters SET status = 'dead', last_error = $2, attempts = attempts + 1
                        WHERE id = $1""", r["id"], result.error)

    async def _gauges(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            """SELECT count(*) AS backlog, extract(epoch FROM now() - min(c.at)) AS lag
                 FROM change_log c, upstream_state s
                WHERE (c.txid, c.id) > (s.cursor_txid, s.cursor_id) AND c.entity = ANY($1)""",
            list(self.cfg.entities),
        )
        metrics.BACKLOG.set(row["backlog"])
        metrics.LAG.set(float(row["lag"] or 0))

    async def drain(self, *, max_rounds: int = 10_000) -> list[str]:
        """Run rounds until idle or waiting (for tests and ``hotline ingest push``)."""
        outcomes = []
        for _ in range(max_rounds):
            outcome = await self.step()
            outcomes.append(outcome)
            if outcome in ("idle", "waiting"):
                break
        return outcomes

    async def run(self, stopping: asyncio.Event) -> None:
        """Forever, on the one node holding the push lock; survives database outages."""
        await run_on_one_node(self.pool, LockKey.UPSTREAM_PUSH, lambda conn: self._push(conn, stopping), stopping,
                              name="upstream worker")

    async def _push(self, lock_conn: asyncpg.Connection, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                outcome = await self.step()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("upstream round failed: %s", exc)
                if lock_conn.is_closed():
                    return  # the lock went with its connection: take it again first
                outcome = "waiting"
            if outcome in ("sent", "dead") or (outcome == "failed" and self.cfg.backoff_base == 0):
                continue
            if outcome == "idle" and self.wake is not None:
                await _wait_event(self.wake, stopping, 1.0)
            else:
                await wait_or_stop(stopping, 0.2 if outcome == "waiting" else 0.05)


async def _wait_event(event: asyncio.Event, stopping: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    event.clear()


async def status(pool: asyncpg.Pool, cfg: UpstreamSettings) -> dict[str, Any]:
    row = await pool.fetchrow(
        """SELECT s.cursor_txid::text AS cursor_txid, s.cursor_id, s.head_change_id, s.head_attempts,
                  s.next_attempt_at, s.last_error, s.last_attempt_at, s.last_success_at, s.sent_total, s.dead_total,
                  (SELECT count(*) FROM change_log c WHERE (c.txid, c.id) > (s.cursor_txid, s.cursor_id)
                      AND c.entity = ANY($1)) AS backlog,
                  (SELECT min(c.at) FROM change_log c WHERE (c.txid, c.id) > (s.cursor_txid, s.cursor_id)
                      AND c.entity = ANY($1)) AS oldest_pending_at,
                  (SELECT count(*) FROM upstream_dead_letters WHERE status = 'dead') AS dead_now,
                  (SELECT count(*) FROM upstream_dead_letters WHERE status = 'requeued') AS requeued
             FROM upstream_state s""",
        list(cfg.entities),
    )
    data = dict(row)
    cursor = f"{data.pop('cursor_txid')}-{data.pop('cursor_id')}"
    return {"enabled": cfg.enabled, "endpoint": public_endpoint(cfg.url), "cursor": cursor,
            "max_attempts": cfg.max_attempts, **data}
