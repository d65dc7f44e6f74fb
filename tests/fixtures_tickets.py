"""Fixtures for the ticket-side tests (tickets, SLA, reports, numbering, assessment, notify):
the reference data seeded from config/, and a cast of users (centre roles and liaisons of
the units around the lead unit). Registered for the whole suite by tests/conftest.py."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from tickets_support import ABOVE, ASSIST, LEAD, OTHER, SUB, Cast, _hash

from hotline.auth.model import User
from hotline.tickets.seed import seed_reference_data


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await seed_reference_data(conn)


@pytest.fixture
async def cast(pool: asyncpg.Pool, seeded: dict[str, Any]) -> Cast:
    async def user(name: str, *roles: str, unit: str | None = None) -> User:
        # inserted directly with one precomputed hash: argon2 per user would dominate the tests
        row = await pool.fetchrow(
            """INSERT INTO users (username, display_name, password_hash, roles, unit_code)
               VALUES ($1, $1, $2, $3, $4)
               RETURNING id, username, display_name, roles, unit_code, hotline_number, active""",
            name, _hash(), list(roles), unit)
        return User.from_row(row)

    # a unit above LEAD (提级办理) and one under it (下派)
    await pool.execute("INSERT INTO units (code, name, kind) VALUES ($1, '舟山市人民政府', 'other')", ABOVE)
    await pool.execute("UPDATE units SET parent_code = $2 WHERE code = $1", LEAD, ABOVE)
    await pool.execute("INSERT INTO units (code, name, kind, parent_code) VALUES ($1, '城管定海中队', 'other', $2)",
                       SUB, LEAD)
    return Cast(
        agent=await user("agent1", "agent"), dispatcher=await user("disp1", "dispatcher"),
        supervisor=await user("sup1", "supervisor"), admin=await user("admin1", "admin"),
        liaison=await user("liaison-lead", "liaison", unit=LEAD),
        assist_liaison=await user("liaison-assist", "liaison", unit=ASSIST),
        other_liaison=await user("liaison-other", "liaison", unit=OTHER),
        sub_liaison=await user("liaison-sub", "liaison", unit=SUB),
    )
