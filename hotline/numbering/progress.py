"""The citizens' progress look-up (工单进度查询, 国办发〔2020〕53号 self-service): a
ticket number plus the last four digits of the caller's (or contact) phone answers
with the ticket's state, its lead unit's name and its dates, nothing personal.

Every other input (unknown number, wrong digits, malformed either) gets the same
refusal, so the answer never tells which part was wrong. Attempts are counted in
``progress_lookups``: at most ``per_client`` per client address and ``per_number``
refused ones per ticket number within ``window_minutes`` (guessing 10,000 suffixes
is not possible; a refused 429 says only "too many")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from hotline.config import Settings, section_settings
from hotline.errors import ConfigError, NotFound, TooManyRequests

PUBLIC_STATE_ZH = {
    "intake": "已受理", "dispatched": "已转办", "handling": "办理中", "return_review": "办理中",
    "extension_review": "办理中", "waiting_citizen": "待补充材料", "reply_review": "办理中",
    "callback": "待回访", "closed": "已办结", "merged": "已合并办理",
}
REFUSAL = "未查询到匹配的工单，请核对工单编号和手机号码后四位"
_SUFFIX = re.compile(r"^[0-9]{4}$")


@dataclass(frozen=True, slots=True)
class ProgressSettings:
    #: the window the limits count in, in minutes
    window_minutes: int = 15
    #: look-ups per client address in the window
    per_client: int = 20
    #: refused look-ups per ticket number in the window (any client)
    per_number: int = 5
    #: days the attempts are kept
    retention_days: int = 7


def progress_settings(settings: Settings) -> ProgressSettings:
    cfg = section_settings(settings, "progress", ProgressSettings)
    for name in ("window_minutes", "per_client", "per_number", "retention_days"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"[progress] {name} must be ≥ 1, got {getattr(cfg, name)}", field=f"progress.{name}")
    return cfg


class LookupRefused(NotFound):
    """The one refusal for every wrong input (never says which part was wrong)."""


async def look_up(conn: asyncpg.Connection, cfg: ProgressSettings, *, number: Any, suffix: Any, client: str,
                  now: datetime) -> dict[str, Any]:
    """The public view of the ticket, or :class:`LookupRefused` / :class:`TooManyRequests`."""
    key = number.strip().upper()[:32] if isinstance(number, str) else ""
    since = now - timedelta(minutes=cfg.window_minutes)
    # the attempt is recorded (and committed) before anything is checked
    attempt = await conn.fetchval(
        "INSERT INTO progress_lookups (at, client, number) VALUES ($1, $2, $3) RETURNING id", now, client, key)
    counts = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM progress_lookups WHERE client = $1 AND at > $3 AND at <= $4) AS by_client,
                  (SELECT count(*) FROM progress_lookups WHERE number = $2 AND NOT ok AND at > $3 AND at <= $4)
                      AS by_number""", client, key, since, now)
    if counts["by_client"] > cfg.per_client or counts["by_number"] > cfg.per_number:
        raise TooManyRequests("查询过于频繁，请稍后再试", retry_after_minutes=cfg.window_minutes)
    row = None
    if isinstance(suffix, str) and _SUFFIX.match(suffix) and key:
        row = await conn.fetchrow(
            """SELECT t.number, t.state, t.created_at, t.dispatched_at, t.closed_at, u.name AS unit_name
                 FROM tickets t LEFT JOIN units u ON u.code = t.lead_unit_code
                WHERE t.number = $1
                  AND ((length(t.caller_number) >= 7 AND right(t.caller_number, 4) = $2)
                    OR (length(t.contact_number) >= 7 AND right(t.contact_number, 4) = $2))""", key, suffix)
    if row is None:
        raise LookupRefused(REFUSAL)
    await conn.execute("UPDATE progress_lookups SET ok = true WHERE id = $1", attempt)
    return {"number": row["number"], "state": row["state"], "state_name": PUBLIC_STATE_ZH[row["state"]],
            "unit_name": row["unit_name"], "created_at": row["created_at"], "dispatched_at": row["dispatched_at"],
            "closed_at": row["closed_at"]}


async def prune(conn: asyncpg.Connection | asyncpg.Pool, cfg: ProgressSettings, now: datetime) -> int:
    done = await conn.execute("DELETE FROM progress_lookups WHERE at < $1", now - timedelta(days=cfg.retention_days))
    return int(done.split()[-1])
