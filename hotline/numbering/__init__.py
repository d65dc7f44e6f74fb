"""Readable ticket numbers (工单流水号), e.g. ``ZS2612010001``: prefix + local creation
day (yymmdd) + a daily sequence. The database assigns them on every insert into
``tickets`` (migration 0080: one sequence per day, so a number is never reused, even
after a rollback or a deletion); this module holds the settings, prepares the coming
days' sequences and turns a number typed by a person back into a ticket."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from hotline.config import Settings, section_settings
from hotline.errors import ConfigError

#: what a ticket number looks like (checked before touching the database)
NUMBER_RE = re.compile(r"^[A-Z]{1,8}\d{9,14}$")


@dataclass(frozen=True, slots=True)
class NumberingSettings:
    #: letters before the date (the city's code): ZS for Zhoushan
    prefix: str = "ZS"
    #: digits of the daily sequence (zero-padded; a day past 10^digits tickets gets more)
    digits: int = 4
    #: days ahead whose sequences are prepared outside any ticket's transaction
    prepare_days: int = 3


def numbering_settings(settings: Settings) -> NumberingSettings:
    cfg = section_settings(settings, "numbering", NumberingSettings)
    if not re.fullmatch(r"[A-Z]{1,8}", cfg.prefix):
        raise ConfigError(f"[numbering] prefix must be 1-8 capital letters, got {cfg.prefix!r}",
                          field="numbering.prefix")
    if not 3 <= cfg.digits <= 8:
        raise ConfigError(f"[numbering] digits must be 3..8, got {cfg.digits}", field="numbering.digits")
    if not 1 <= cfg.prepare_days <= 31:
        raise ConfigError(f"[numbering] prepare_days must be 1..31, got {cfg.prepare_days}",
                          field="numbering.prepare_days")
    return cfg


async def configure(conn: asyncpg.Connection | asyncpg.Pool, cfg: NumberingSettings, timezone: str) -> None:
    """Store the settings where the database's number function reads them."""
    await conn.execute(
        """UPDATE ticket_numbering SET prefix = $1, digits = $2, timezone = $3, updated_at = now()
            WHERE (prefix, digits, timezone) IS DISTINCT FROM ($1, $2, $3)""",
        cfg.prefix, cfg.digits, timezone)


async def prepare(pool: asyncpg.Pool, first: date, days: int) -> None:
    """Create the sequences of ``days`` days from ``first`` in their own transactions,
    so that no ticket's rollback can take a day's sequence (and its numbers) away."""
    for i in range(days):
        async with pool.acquire() as conn:
            await conn.execute("SELECT ticket_number_sequence($1)", first + timedelta(days=i))


def looks_like_number(text: str) -> bool:
    return bool(NUMBER_RE.match(text))


async def resolve(conn: asyncpg.Connection | asyncpg.Pool, ref: str) -> int | None:
    """The id of the ticket a person referred to, by its number (case and blanks
    forgiven) or by its database id; None when there is no such ticket."""
    text = ref.strip().upper()
    if text.isdigit() and len(text) < 19:
        found = await conn.fetchval("SELECT id FROM tickets WHERE id = $1", int(text))
    elif looks_like_number(text):
        found = await conn.fetchval("SELECT id FROM tickets WHERE number = $1", text)
    else:
        return None
    return int(found) if found is not None else None
