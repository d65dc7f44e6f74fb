"""The registry in PostgreSQL: ``hotline hotlines sync`` loads a validated file in
one transaction. Lines removed from the file are deactivated, never deleted, so
calls and tickets keep their origin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from hotline.registry.model import Hotline, Registry


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    deactivated: tuple[str, ...]
    units_added: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.deactivated)} deactivated"
            + (f"; units added: {', '.join(self.units_added)}" if self.units_added else "")
        )


def _row(line: Hotline) -> tuple[Any, ...]:
    return (
        line.number, line.name, line.department, line.unit, line.mode.value, line.mode_basis,
        line.queue, line.skill, line.announcement, line.expert_pool, line.dial_target,
        line.no_answer_timeout, line.service_hours.to_json(),
    )


_COLUMNS = (
    "number, name, department, unit_code, mode, mode_basis, queue, skill, announcement, "
    "expert_pool, dial_target, no_answer_timeout, service_hours"
)


async def sync_registry(conn: asyncpg.Connection, registry: Registry) -> SyncResult:
    async with conn.transaction():
        # Units named by the registry are created if missing; names edited through
        # the API are not overwritten by the file.
        units_added = []
        for line in registry:
            inserted = await conn.fetchval(
                "INSERT INTO units (code, name) VALUES ($1, $2) "
                "ON CONFLICT (code) DO NOTHING RETURNING code",
                line.unit,
                line.department,
            )
            if inserted:
                units_added.append(inserted)

        existing = {
            r["number"]: r
            for r in await conn.fetch(f"SELECT {_COLUMNS}, active FROM hotlines FOR UPDATE")  # noqa: S608
        }
        added, updated, unchanged = [], [], []
        for line in registry:
            row = _row(line)
            old = existing.get(line.number)
            if old is None:
                added.append(line.number)
            elif tuple(old[i] for i in range(len(row))) == row and old["active"]:
                unchanged.append(line.number)
                continue
            else:
                updated.append(line.number)
            await conn.execute(
                f"""INSERT INTO hotlines ({_COLUMNS}, active, synced_at, deactivated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, true, now(), NULL)
                    ON CONFLICT (number) DO UPDATE SET
                      name = EXCLUDED.name, department = EXCLUDED.department,
                      unit_code = EXCLUDED.unit_code, mode = EXCLUDED.mode,
                      mode_basis = EXCLUDED.mode_basis, queue = EXCLUDED.queue,
                      skill = EXCLUDED.skill, announcement = EXCLUDED.announcement,
                      expert_pool = EXCLUDED.expert_pool, dial_target = EXCLUDED.dial_target,
                      no_answer_timeout = EXCLUDED.no_answer_timeout,
                      service_hours = EXCLUDED.service_hours, active = true,
                      synced_at = now(), deactivated_at = NULL""",  # noqa: S608
                *row,
            )
        in_file = {line.number for line in registry}
        gone = sorted(n for n, r in existing.items() if n not in in_file and r["active"])
        if gone:
            await conn.execute(
                "UPDATE hotlines SET active = false, deactivated_at = now() WHERE number = ANY($1)",
                gone,
            )
    return SyncResult(tuple(added), tuple(updated), tuple(unchanged), tuple(gone), tuple(units_added))


async def list_hotlines(conn: asyncpg.Connection | asyncpg.Pool, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, active, deactivated_at FROM hotlines "  # noqa: S608
        "WHERE active OR $1 ORDER BY (mode = 'platform') DESC, mode, number",
        include_inactive,
    )
    return [dict(r) for r in rows]
