"""Delivers the outbox through the gateway, oldest due first, with the upstream push's
rules (hotline.outbound):

* gateway **unavailable** (refused connection, timeout, 408/429/502/503/504): nothing
  is wrong with the message; no attempt is counted, the worker backs off (capped
  exponential) and sends the same message again; an outage loses nothing;
* gateway **refuses** (any other non-2xx): the message counts an attempt and waits
  ``backoff(attempts)``; after ``max_attempts`` it is a dead letter (status ``dead``,
  with the gateway's last answer as the reason), listed to supervisors, who may requeue it.

Each request carries ``Idempotency-Key: hotline-notify:<id>`` so the gateway can drop a
resend after a lost answer (at-least-once delivery)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from hotline.config import read_secret
from hotline.db.locks import LockKey, run_on_one_node, wait_or_stop
from hotline.jsoncodec import dumps
from hotline.notify import NotifySettings, render
from hotline.outbound import SendResult, backoff, post_json, signed_headers

log = logging.getLogger(__name__)


class NotifyWorker:
    def __init__(self, pool: asyncpg.Pool, cfg: NotifySettings, tz: ZoneInfo) -> None:
        self.pool = pool
        self.cfg = cfg
        self.tz = tz
        self.session: aiohttp.ClientSession | None = None
        self.outage = 0  # consecutive "unavailable" answers
        self.resume_at: datetime | None = None
        self._key = read_secret(cfg.key_env) if cfg.key_env else None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def send(self, row: asyncpg.Record) -> SendResult:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        payload = row["payload"] if isinstance(row["payload"], dict) else {}
        body = dumps({"id": f"hotline-notify-{row['id']}", "kind": row["kind"], "to": row["recipient"],
                      "text": render(self.cfg, row["kind"], payload, self.tz),
                      "ticket_number": payload.get("number")}).encode()
        key = f"hotline-notify:{row['id']}"
        return await post_json(self.session, self.cfg.url, body, signed_headers(body, self.cfg.url, key, self._key))

    async def step(self, now: datetime) -> dict[str, int]:
        """One round at ``now``: sends the due notifications; counts per outcome."""
        done = {"sent": 0, "failed": 0, "dead": 0, "waiting": 0}
        if self.resume_at is not None and now < self.resume_at:
            done["waiting"] = 1
            return done
        rows = await self.pool.fetch(
            """SELECT id, kind, recipient, payload, attempts FROM notifications
                WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2""",
            now, self.cfg.batch_size)
        for row in rows:
            result = await self.send(row)
            if result.ok:
                self.outage, self.resume_at = 0, None
                await self.pool.execute(
                    "UPDATE notifications SET status = 'sent', sent_at = $2, last_error = NULL WHERE id = $1",
                    row["id"], now)
                done["sent"] += 1
                continue
            if result.kind == "unavailable":
                self.outage += 1
                self.resume_at = now + timedelta(seconds=backoff(self.cfg.backoff_base, self.cfg.backoff_max,
                                                                 self.outage))
                await self.pool.execute("UPDATE notifications SET last_error = $2 WHERE id = $1", row["id"],
                                        result.error)
                log.warning("notification gateway unavailable (%d in a row): %s", self.outage, result.error)
                done["failed"] += 1
                break  # the gateway is down: the rest waits with this one
            attempts = row["attempts"] + 1
            if attempts >= self.cfg.max_attempts:
                await self.pool.execute(
                    """UPDATE notifications SET status = 'dead', attempts = $2, last_error = $3, dead_at = $4
                        WHERE id = $1""", row["id"], attempts, result.error, now)
                log.error("notification %d refused %d times; dead letter: %s", row["id"], attempts, result.error)
                done["dead"] += 1
            else:
                wait = backoff(self.cfg.backoff_base, self.cfg.backoff_max, attempts)
                await self.pool.execute(
                    """UPDATE notifications SET attempts = $2, last_error = $3,
                              next_attempt_at = $4::timestamptz + make_interval(secs => $5) WHERE id = $1""",
                    row["id"], attempts, result.error, now, wait)
                done["failed"] += 1
        return done

    async def run(self, stopping: asyncio.Event, *, interval: float = 1.0) -> None:
        """Forever, on the one node holding the lock; survives database outages."""
        async def deliver(lock_conn: asyncpg.Connection) -> None:
            while not stopping.is_set():
                await self.step(datetime.now(self.tz))
                await wait_or_stop(stopping, interval)

        await run_on_one_node(self.pool, LockKey.NOTIFY_DELIVERY, deliver, stopping, name="notification worker")


async def remind(conn: asyncpg.Connection | asyncpg.Pool, cfg: NotifySettings, now: datetime) -> int:
    """Queue a reminder to the unit (its contact phone) for every running deadline of
    ``remind_stages`` due within ``remind_before_hours`` after ``now``; once per clock
    and deadline (a recomputed deadline reminds again). Returns how many were queued."""
    done = await conn.execute(
        """INSERT INTO notifications (kind, ticket_id, recipient, payload, dedupe_key, created_at, next_attempt_at)
           SELECT 'reminder', k.ticket_id, u.contact_phone,
                  jsonb_build_object('number', t.number, 'stage', k.stage, 'deadline', k.deadline,
                                     'unit_name', u.name),
                  'reminder:' || k.id || ':' || extract(epoch FROM k.deadline)::bigint, $1, $1
             FROM sla_clocks k JOIN tickets t ON t.id = k.ticket_id JOIN units u ON u.code = k.unit_code
            WHERE k.stopped_at IS NULL AND k.leg_id IS NOT NULL AND k.stage = ANY($2::text[])
              AND k.deadline > $1 AND k.deadline <= $1 + make_interval(secs => $3)
              AND length(u.contact_phone) >= 7
           ON CONFLICT (dedupe_key) DO NOTHING""",
        now, list(cfg.remind_stages), cfg.remind_before_hours * 3600)
    return int(done.split()[-1])


async def requeue(conn: asyncpg.Connection, notification_id: int, now: datetime) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = $2, dead_at = NULL
            WHERE id = $1 AND status = 'dead' RETURNING id, kind, ticket_id, status""", notification_id, now)
    return dict(row) if row else None
