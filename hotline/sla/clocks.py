"""SLA clocks: one per (ticket, leg, stage, round). A clock's deadline and alert
marks are *computed* from its policy, the working-day calendar and the ticket's
history (waiting-on-citizen pauses, approved extensions), so recomputing after a
calendar or policy change moves them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from hotline.calendar.core import WorkCalendar
from hotline.sla.config import SlaConfig, sla_config

Pause = tuple[datetime, datetime | None]
PAUSING_STAGES = ("handle",)


def budget_of(cal: WorkCalendar, amount: float, unit: str, *, wall: bool = False) -> tuple[timedelta, bool]:
    """``(budget, natural_time)`` of a policy amount. ``wall``: the stage runs on the
    wall clock for this urgency (config ``time_basis``), so working days count as
    24 h days and working hours as hours."""
    if unit == "working_days":
        return (timedelta(days=float(amount)), True) if wall else (cal.day_length * float(amount), False)
    if unit == "working_hours":
        return timedelta(hours=float(amount)), wall
    if unit == "hours":
        return timedelta(hours=float(amount)), True
    return timedelta(days=float(amount)), True


def point(cal: WorkCalendar, start: datetime, amount: timedelta, natural: bool,
          pauses: Sequence[Pause]) -> datetime | None:
    """When ``amount`` of (working or wall-clock) time has run from ``start``,
    not counting pauses; None when a pause that is still going comes first."""
    add: Callable[[datetime, timedelta], datetime] = (lambda a, d: a + d) if natural else cal.add
    between: Callable[[datetime, datetime], timedelta] = (
        (lambda a, b: max(b - a, timedelta(0))) if natural else cal.between)
    cursor, remaining = start, amount
    for p0, p1 in sorted(pauses, key=lambda p: p[0]):
        if p1 is not None and p1 <= cursor:
            continue
        candidate = add(cursor, remaining)
        if candidate <= p0:
            return candidate
        remaining -= between(cursor, max(p0, cursor))
        if p1 is None:
            return None
        cursor = max(cursor, p1)
    return add(cursor, remaining)


def compute(cal: WorkCalendar, start: datetime, budget: timedelta, natural: bool,
            pauses: Sequence[Pause], levels: Sequence[int]) -> tuple[datetime | None, list[datetime | None]]:
    """``(deadline, marks)``: the deadline and the instant each alert level is reached."""
    marks = [point(cal, start, budget * (pct / 100), natural, pauses) for pct in levels]
    deadline = marks[list(levels).index(100)]
    return deadline, marks


def pauses_from_history(events: Sequence[Any]) -> list[Pause]:
    """Waiting-on-citizen intervals from ``(action, at)`` history rows in order."""
    out: list[Pause] = []
    opened: datetime | None = None
    for e in events:
        if e["action"] == "await_citizen" and opened is None:
            opened = e["at"]
        elif e["action"] == "resume" and opened is not None:
            out.append((opened, e["at"]))
            opened = None
    if opened is not None:
        out.append((opened, None))
    return out


def cap_pauses(cal: WorkCalendar, pauses: Sequence[Pause], cap: timedelta) -> list[Pause]:
    """The pauses with at most ``cap`` of working time paused in total: the part of
    a pause beyond the cap counts again (an open pause ends when the cap is used)."""
    out: list[Pause] = []
    remaining = cap
    for p0, p1 in sorted(pauses, key=lambda p: p[0]):
        if remaining <= timedelta(0):
            break
        length = cal.between(p0, p1) if p1 is not None else None
        if length is not None and length <= remaining:
            out.append((p0, p1))
            remaining -= length
            continue
        end = cal.add(p0, remaining)
        out.append((p0, end if p1 is None else min(end, p1)))
        remaining = timedelta(0)
    return out


async def select_policies(conn: asyncpg.Connection, ticket: Any, stages: Sequence[str]) -> dict[str, Any]:
    """The most specific active policy per stage: urgency, then category (nearest
    ancestor), then line, then kind."""
    rows = await conn.fetch(
        """WITH RECURSIVE up(code, depth) AS (
               SELECT $3::text, 0 WHERE $3::text IS NOT NULL
               UNION ALL
               SELECT c.parent_code, up.depth + 1 FROM ticket_categories c JOIN up ON c.code = up.code
                WHERE c.parent_code IS NOT NULL)
           SELECT DISTINCT ON (p.stage) p.stage, p.id, p.amount, p.unit
             FROM sla_policies p LEFT JOIN up ON up.code = p.category_code
            WHERE p.stage = ANY($1::text[])
              AND (p.hotline_number IS NULL OR p.hotline_number = $2)
              AND (p.category_code IS NULL OR up.code IS NOT NULL)
              AND (p.urgency IS NULL OR p.urgency = $4)
              AND (p.kind IS NULL OR p.kind = $5)
            ORDER BY p.stage, (p.urgency IS NOT NULL) DESC, coalesce(up.depth, 1000),
                     (p.hotline_number IS NOT NULL) DESC, (p.kind IS NOT NULL) DESC, p.id""",
        list(stages), ticket["hotline_number"], ticket["category_code"], ticket["urgency"], ticket["kind"],
    )
    return {r["stage"]: r for r in rows}


def _next_check(marks: Sequence[datetime | None], fired: int) -> datetime | None:
    return marks[fired] if fired < len(marks) else None


async def start_clocks(
    conn: asyncpg.Connection, cal: WorkCalendar, ticket: Any, at: datetime,
    clocks: Sequence[tuple[str, int | None, str | None, datetime | None]],
    *, caps: dict[int, datetime] | None = None, rules: SlaConfig | None = None,
) -> int:
    """Start clocks ``(stage, leg_id, unit_code, due_at)`` in one round trip; a
    ``due_at`` sets an explicit (wall-clock) deadline. A stage with no matching
    policy and no ``due_at`` gets no clock. ``caps`` (leg id -> instant): a handle
    clock of that leg is due no later (a lower level cannot outlast its parent).
    Returns how many were started. ``rules``: the node's ``sla.yaml`` (default: the packaged one)."""
    config = rules or sla_config(None)
    levels = list(config.alert_levels)
    policies = await select_policies(conn, ticket, sorted({c[0] for c in clocks if c[3] is None}))
    rows = []
    for stage, leg_id, unit_code, due_at in clocks:
        if due_at is not None:
            policy_id, budget, natural = None, due_at - at, True
        elif stage in policies:
            policy = policies[stage]
            policy_id = policy["id"]
            budget, natural = budget_of(cal, policy["amount"], policy["unit"],
                                        wall=config.is_wall(ticket["urgency"], stage))
        else:
            continue
        deadline, marks = compute(cal, at, budget, natural, [], levels)
        cap = (caps or {}).get(leg_id) if leg_id is not None and stage == "handle" else None
        if cap is not None and cap > at and deadline is not None and deadline > cap:
            policy_id, budget, natural = None, cap - at, True
            deadline, marks = compute(cal, at, budget, natural, [], levels)
        rows.append((ticket["id"], leg_id, stage, policy_id, budget, natural, at, deadline, levels, marks,
                     _next_check(marks, 0), ticket["hotline_number"], unit_code or ticket.get("lead_unit_code")))
    if rows:
        await conn.executemany(
            """INSERT INTO sla_clocks (ticket_id, leg_id, stage, policy_id, budget, natural_time, started_at,
                                       deadline, levels, marks, next_check_at, hotline_number, unit_code, base_budget)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                       CASE WHEN $4::bigint IS NULL THEN $5::interval END)""", rows)
    return len(rows)


async def start_clock(conn: asyncpg.Connection, cal: WorkCalendar, ticket: Any, stage: str, at: datetime, *,
                      leg_id: int | None = None, unit_code: str | None = None,
                      due_at: datetime | None = None, rules: SlaConfig | None = None) -> int:
    return await start_clocks(conn, cal, ticket, at, [(stage, leg_id, unit_code, due_at)], rules=rules)


async def stop_clocks(conn: asyncpg.Connection, ticket_id: int, at: datetime, *, stages: Sequence[str] | None = None,
                      leg_id: int | None = None, any_leg: bool = False, cancel: bool = False) -> int:
    """Stop running clocks of a ticket: met when stopped by the deadline, else missed.
    ``cancel`` (the work moved elsewhere: redispatch, merge) marks a clock cancelled
    only if it was still on time at ``at``: a unit that held a ticket past its
    deadline keeps the lateness on record (and in the on-time rates)."""
    result = await conn.execute(
        """UPDATE sla_clocks SET stopped_at = $2, next_check_at = NULL, updated_at = now(),
                  outcome = CASE WHEN deadline IS NOT NULL AND $2 > deadline THEN 'missed'
                                 WHEN $6 THEN 'cancelled' ELSE 'met' END,
                  overdue = overdue OR (deadline IS NOT NULL AND $2 > deadline)
            WHERE ticket_id = $1 AND stopped_at IS NULL
              AND ($3::text[] IS NULL OR stage = ANY($3::text[]))
              AND ($5 OR leg_id IS NOT DISTINCT FROM $4)""",
        ticket_id, at, list(stages) if stages else None, leg_id, any_leg, cancel,
    )
    return int(result.split()[-1])


async def stop_clock(conn: asyncpg.Connection, clock_id: int, at: datetime) -> None:
    """Stop one running clock (met by its deadline, else missed)."""
    await conn.execute(
        """UPDATE sla_clocks SET stopped_at = $2, next_check_at = NULL, updated_at = now(),
                  outcome = CASE WHEN deadline IS NULL OR $2 <= deadline THEN 'met' ELSE 'missed' END,
                  overdue = overdue OR (deadline IS NOT NULL AND $2 > deadline)
            WHERE id = $1 AND stopped_at IS NULL""", clock_id, at)


async def recompute(conn: asyncpg.Connection, cal: WorkCalendar, *, ticket_ids: Sequence[int] | None = None,
                    start_before: datetime | None = None, batch: int = 5000,
                    rules: SlaConfig | None = None) -> int:
    """Recompute budget, deadline and marks of running clocks (all, of some tickets,
    or those started before a date); already fired levels stay fired."""
    rows = await conn.fetch(
        """SELECT c.id, c.ticket_id, c.stage, c.started_at, c.budget, c.natural_time, c.levels, c.fired,
                  c.policy_id, p.amount, p.unit, coalesce(c.base_budget, c.budget) AS base_budget, coalesce(l.extension_minutes, 0) AS extension_minutes, t.urgency
             FROM sla_clocks c
             JOIN tickets t ON t.id = c.ticket_id
             LEFT JOIN sla_policies p ON p.id = c.policy_id
             LEFT JOIN ticket_legs l ON l.id = c.leg_id
            WHERE c.stopped_at IS NULL
              AND ($1::bigint[] IS NULL OR c.ticket_id = ANY($1::bigint[]))
              AND ($2::timestamptz IS NULL OR c.started_at < $2)
            ORDER BY c.id LIMIT $3""",
        list(ticket_ids) if ticket_ids is not None else None, start_before, batch if ticket_ids is None else None,
    )
    if not rows:
        return 0
    events = await conn.fetch(
        """SELECT ticket_id, action, at FROM ticket_events
            WHERE ticket_id = ANY($1::bigint[]) AND action IN ('await_citizen', 'resume') ORDER BY id""",
        sorted({r["ticket_id"] for r in rows}),
    )
    by_ticket: dict[int, list[Any]] = {}
    for e in events:
        by_ticket.setdefault(e["ticket_id"], []).append(e)
    config = rules or sla_config(None)
    wait_cap = cal.day_length * config.await_max_working_days
    updates = []
    for r in rows:
        if r["policy_id"] is not None:
            budget, natural = budget_of(cal, r["amount"], r["unit"], wall=config.is_wall(r["urgency"], r["stage"]))
        else:
            budget, natural = r["base_budget"], r["natural_time"]
        if r["stage"] == "handle":
            budget += timedelta(minutes=r["extension_minutes"])
        pauses = []
        if r["stage"] in PAUSING_STAGES:
            pauses = cap_pauses(cal, [p for p in pauses_from_history(by_ticket.get(r["ticket_id"], []))
                                      if p[1] is None or p[1] > r["started_at"]], wait_cap)
        deadline, marks = compute(cal, r["started_at"], budget, natural, pauses, r["levels"])
        updates.append((r["id"], budget, deadline, marks, _next_check(marks, r["fired"])))
    await conn.executemany(
        """UPDATE sla_clocks SET budget = $2, deadline = $3, marks = $4, next_check_at = $5, updated_at = now()
            WHERE id = $1""",
        updates,
    )
    return len(updates)


async def recompute_all(conn: asyncpg.Connection, cal: WorkCalendar, *, batch: int = 5000,
                        rules: SlaConfig | None = None) -> int:
    """Recompute every running clock, in batches (after a calendar or policy change)."""
    total, last_id = 0, 0
    while True:
        ids = await conn.fetch(
            "SELECT id, ticket_id FROM sla_clocks WHERE stopped_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
            last_id, batch)
        if not ids:
            return total
        last_id = ids[-1]["id"]
        total += await recompute(conn, cal, ticket_ids=sorted({r["ticket_id"] for r in ids}), rules=rules)
