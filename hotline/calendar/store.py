"""The calendar in PostgreSQL: load it into a :class:`WorkCalendar`, seed years from
``config/calendar/<year>.yaml``, edit single days and the working-hour windows."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from hotline.calendar.core import SHANGHAI, WorkCalendar
from hotline.config import SHIPPED_CONFIG_DIR, read_yaml
from hotline.errors import ConfigError, NotFound, ValidationError

CALENDAR_DIR = SHIPPED_CONFIG_DIR / "calendar"
KINDS = ("holiday", "workday")


class CalendarStore:
    """The calendar as a node keeps it: read again only when its version changes.
    One per runtime (never a module global), in the node's time zone, so every part
    of a node computes deadlines in the same zone."""

    def __init__(self, tz: ZoneInfo = SHANGHAI) -> None:
        self.tz = tz
        self._cached: dict[str, tuple[int, WorkCalendar]] = {}  # database -> (version, calendar)

    async def load(self, conn: asyncpg.Connection | asyncpg.Pool, *,
                   version: tuple[str, int] | None = None) -> WorkCalendar:
        """The calendar, from memory when its version (``(database, version)``, read
        here unless given) has not changed since it was last read."""
        if version is None:
            version = await _version(conn)
        cached = self._cached.get(version[0])
        if cached is not None and cached[0] == version[1]:
            return cached[1]
        cal = await _read_calendar(conn, self.tz)
        self._cached[version[0]] = (version[1], cal)
        return cal


async def _version(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[str, int]:
    row = await conn.fetchrow("SELECT current_database() AS db, version FROM calendar_version WHERE id = 1")
    return (row["db"], row["version"]) if row else ("", -1)


async def load_calendar(conn: asyncpg.Connection | asyncpg.Pool, tz: ZoneInfo = SHANGHAI, *,
                        version: tuple[str, int] | None = None) -> WorkCalendar:
    """The calendar read now (no cache; a node keeps a :class:`CalendarStore`)."""
    return await _read_calendar(conn, tz)


async def _read_calendar(conn: asyncpg.Connection | asyncpg.Pool, tz: ZoneInfo) -> WorkCalendar:
    days = await conn.fetch("SELECT day, kind FROM calendar_days")
    hours = await conn.fetch("SELECT opens, closes FROM calendar_hours ORDER BY opens")
    windows = tuple((r["opens"], r["closes"]) for r in hours)
    return WorkCalendar(
        overrides={r["day"]: r["kind"] == "workday" for r in days},
        windows=windows or WorkCalendar().windows,
        tz=tz,
    )


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def load_year_file(path: str | Path) -> dict[str, Any]:
    """Parse and check one year file: ``{year, provisional, source, days: [(date, kind, name)]}``."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("year"), int):
        raise ConfigError(f"{path}: needs a top-level `year:`")
    year = data["year"]
    days: dict[date, tuple[str, str]] = {}
    for i, item in enumerate(data.get("holidays") or []):
        first = _date(item.get("from"), f"{path} holidays[{i}].from")
        last = _date(item.get("to", item.get("from")), f"{path} holidays[{i}].to")
        if last < first or (last - first).days > 15:
            raise ConfigError(f"{path} holidays[{i}]: {first}..{last} is not a holiday range")
        d = first
        while d <= last:
            days[d] = ("holiday", str(item.get("name", "")))
            d += timedelta(days=1)
    for i, item in enumerate(data.get("workdays") or []):
        d = _date(item.get("date"), f"{path} workdays[{i}].date")
        if d in days:
            raise ConfigError(f"{path} workdays[{i}]: {d} is also listed as a holiday")
        if d.weekday() < 5:
            raise ConfigError(f"{path} workdays[{i}]: {d} is a weekday; make-up days are weekend days")
        days[d] = ("workday", str(item.get("name", "")))
    wrong = [d for d in days if d.year != year]
    if wrong:
        raise ConfigError(f"{path}: {wrong[0]} is not in {year}")
    return {
        "year": year,
        "provisional": bool(data.get("provisional", False)),
        "source": str(data.get("source", "")),
        "days": sorted((d, k, n) for d, (k, n) in days.items()),
    }


async def seed_year(conn: asyncpg.Connection, data: dict[str, Any], *, replace: bool = False) -> int:
    """Store one parsed year. Without ``replace`` a year already loaded is left as
    it is (edits made through the API survive restarts); returns days written."""
    async with conn.transaction():
        exists = await conn.fetchval("SELECT true FROM calendar_years WHERE year = $1 FOR UPDATE", data["year"])
        if exists and not replace:
            return 0
        await conn.execute("DELETE FROM calendar_days WHERE day >= $1 AND day < $2",
                           date(data["year"], 1, 1), date(data["year"] + 1, 1, 1))
        await conn.executemany(
            "INSERT INTO calendar_days (day, kind, name, provisional) VALUES ($1, $2, $3, $4)",
            [(d, k, n, data["provisional"]) for d, k, n in data["days"]],
        )
        await conn.execute(
            """INSERT INTO calendar_years (year, source, provisional) VALUES ($1, $2, $3)
               ON CONFLICT (year) DO UPDATE SET source = EXCLUDED.source,
                   provisional = EXCLUDED.provisional, loaded_at = now()""",
            data["year"], data["source"], data["provisional"],
        )
        return len(data["days"])


def year_files(directory: Path = CALENDAR_DIR) -> list[dict[str, Any]]:
    return [load_year_file(p) for p in sorted(directory.glob("[0-9][0-9][0-9][0-9].yaml"))]


async def seed_years(conn: asyncpg.Connection, directory: Path = CALENDAR_DIR) -> dict[int, int]:
    """Seed every ``<year>.yaml`` not loaded yet."""
    out = {}
    for data in year_files(directory):
        out[data["year"]] = await seed_year(conn, data)
    return out


async def set_day(conn: asyncpg.Connection, day: date, kind: str | None, name: str, *,
                  user_id: int | None = None) -> None:
    """Make ``day`` a holiday or a make-up working day, or (kind None) a normal day."""
    if kind is None:
        result = await conn.execute("DELETE FROM calendar_days WHERE day = $1", day)
        if result.endswith(" 0"):
            raise NotFound(f"{day} 没有日历设置", field="day", value=str(day))
        return
    if kind not in KINDS:
        raise ValidationError(f"kind 必须是 {'、'.join(KINDS)} 之一（或 null），收到 {kind!r}", field="kind", value=kind,
                              code="invalid_choice")
    if kind == "workday" and day.weekday() < 5:
        raise ValidationError(f"{day} 是周一至周五，本来就是工作日", field="day", value=str(day), code="already_workday")
    if kind == "holiday" and day.weekday() >= 5:
        raise ValidationError(f"{day} 是周末，本来就是休息日", field="day", value=str(day), code="already_rest_day")
    await conn.execute(
        """INSERT INTO calendar_days (day, kind, name, updated_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
               provisional = false, updated_by = EXCLUDED.updated_by, updated_at = now()""",
        day, kind, name, user_id,
    )


async def set_hours(conn: asyncpg.Connection, windows: list[tuple[time, time]]) -> None:
    if not windows:
        raise ValidationError("至少需要一个工作时段", field="windows", value=[], code="missing_field")
    ordered = sorted(windows)
    for i, (opens, closes) in enumerate(ordered):
        if opens >= closes:
            raise ValidationError(f"时段 {opens}-{closes} 的结束时间早于开始时间", field="windows",
                                  value=f"{opens}-{closes}", code="invalid_window")
        if i and ordered[i - 1][1] > opens:
            raise ValidationError(f"时段在 {opens} 处重叠", field="windows", value=str(opens), code="invalid_window")
    async with conn.transaction():
        await conn.execute("DELETE FROM calendar_hours")
        await conn.executemany("INSERT INTO calendar_hours (position, opens, closes) VALUES ($1, $2, $3)",
                               [(i + 1, o, c) for i, (o, c) in enumerate(ordered)])
