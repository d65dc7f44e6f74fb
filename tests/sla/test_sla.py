"""SLA clocks: deadlines from policy + calendar + history, pause and resume,
extensions, recomputation after a calendar change, and the scan firing each
warning/overdue/escalation exactly once even with two scheduler instances."""

import asyncio
from datetime import date, datetime

import asyncpg
from tickets_support import LEAD, Cast, new_ticket

from hotline.calendar import load_calendar
from hotline.calendar.core import SHANGHAI
from hotline.calendar.store import set_day
from hotline.db import Database
from hotline.db.pool import create_pool
from hotline.runtime import Runtime
from hotline.scheduler import run_exclusively
from hotline.sla.clocks import recompute_all
from hotline.sla.jobs import JOB_ID, scan_job
from hotline.sla.scan import scan
from hotline.tickets.workflow import apply


def sh(m: int, d: int, hh: int = 9, mm: int = 0, y: int = 2026) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


async def _clock(conn: asyncpg.Connection, ticket_id: int, stage: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT c.* FROM sla_clocks c JOIN ticket_legs l ON l.id = c.leg_id "
        "WHERE c.ticket_id = $1 AND c.stage = $2 AND l.role = 'lead' ORDER BY c.id DESC LIMIT 1", ticket_id, stage)


async def test_deadlines_pause_while_waiting_on_the_citizen_and_extend(pool: asyncpg.Pool, cast: Cast) -> None:
    cal = await load_calendar(pool)
    t0 = sh(3, 2)  # Monday
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, at=t0)  # complaint: 15 working days
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        sign = await _clock(conn, tid, "sign")
        assert sign["deadline"] == sh(3, 3)  # one working day
        handle = await _clock(conn, tid, "handle")
        assert handle["deadline"] == cal.add_working_days(t0, 15) == sh(3, 23)
        assert handle["levels"] == [50, 80, 100, 150]
        assert handle["marks"][0] == cal.add_working_days(t0, 7.5)
        await apply(conn, tid, "sign", cast.liaison, at=sh(3, 2, 10))
        sign = await _clock(conn, tid, "sign")
        assert sign["outcome"] == "met" and sign["stopped_at"] == sh(3, 2, 10)

        await apply(conn, tid, "request_await", cast.liaison, {"reason": "补充材料"}, at=sh(3, 3, 17))
        await apply(conn, tid, "await_citizen", cast.dispatcher, at=sh(3, 4))  # the centre approves
        handle = await _clock(conn, tid, "handle")
        # paused, but at most 5 working days (sla.yaml await_citizen.max_working_days)
        assert handle["deadline"] == cal.add_working_days(t0, 20) == sh(3, 30)
        await apply(conn, tid, "resume", cast.liaison, at=sh(3, 6))  # two working days later
        handle = await _clock(conn, tid, "handle")
        assert handle["deadline"] == cal.add_working_days(t0, 17) == sh(3, 25)

        await apply(conn, tid, "request_extension", cast.liaison, {"days": 5, "reason": "需协调"}, at=sh(3, 9))
        await apply(conn, tid, "approve_extension", cast.supervisor, {"days": 3}, at=sh(3, 9, 10))
        handle = await _clock(conn, tid, "handle")
        assert handle["deadline"] == cal.add_working_days(t0, 20) == sh(3, 30)
        # a second pause, resumed across a weekend: Friday 16:30 -> Monday 09:30 is 2 working hours
        await apply(conn, tid, "await_citizen", cast.dispatcher, {"reason": "再次补充"}, at=sh(3, 13, 16, 30))
        await apply(conn, tid, "resume", cast.dispatcher, at=sh(3, 16, 9, 30))
        handle = await _clock(conn, tid, "handle")
        assert handle["deadline"] == sh(3, 30, 11, 0)
        await apply(conn, tid, "reply", cast.liaison, {"reply": "已整改", "basis": "现场核查"}, at=sh(3, 31))
        handle = await conn.fetchrow("SELECT * FROM sla_clocks WHERE id = $1", handle["id"])
        assert handle["outcome"] == "missed"  # replied after the deadline
        review = await conn.fetchrow("SELECT * FROM sla_clocks WHERE ticket_id = $1 AND stage = 'reply'", tid)
        assert review["deadline"] == sh(4, 1) and review["stopped_at"] is None


async def test_calendar_change_recomputes_running_deadlines(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(12, 21)  # Monday
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, kind="enquiry", at=t0)  # 2 working days
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        assert (await _clock(conn, tid, "handle"))["deadline"] == sh(12, 23)
        await set_day(conn, date(2026, 12, 22), "holiday", "临时放假")
        changed = await recompute_all(conn, await load_calendar(conn))
        assert changed == 2  # the lead leg's sign and handle clocks
        assert (await _clock(conn, tid, "handle"))["deadline"] == sh(12, 24)
        assert (await _clock(conn, tid, "sign"))["deadline"] == sh(12, 23)


async def test_policy_selection_by_urgency_and_category(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2, 10)
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO sla_policies (stage, category_code, amount, unit) VALUES ('handle', '02', 3, "
                           "'working_days')")
        tid = await new_ticket(conn, cast, at=t0)  # 0201 is under 02: 3 days, beats the kind rule
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        assert (await _clock(conn, tid, "handle"))["deadline"] == sh(3, 5, 10)
        urgent = await new_ticket(conn, cast, urgency="critical", at=t0)  # 2 wall-clock hours
        await apply(conn, urgent, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        assert (await _clock(conn, urgent, "handle"))["deadline"] == sh(3, 2, 12)
        assert (await _clock(conn, urgent, "sign"))["deadline"] == sh(3, 2, 10, 30)


async def test_scan_fires_each_level_once_in_order(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, kind="enquiry", at=t0)  # handle 2 working days = 15 h
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, tid, "sign", cast.liaison, at=sh(3, 2, 9, 30))
    assert (await scan(pool, now=sh(3, 3, 8, 59))).alerts == 0
    r = await scan(pool, now=sh(3, 3, 9))  # 7 h on Monday + 0.5 h on Tuesday: 7.5 h of 15 h = 50 %
    assert (r.alerts, r.by_kind) == (1, {"warning": 1})
    assert (await scan(pool, now=sh(3, 3, 9))).alerts == 0
    r = await scan(pool, now=sh(3, 4, 9))  # 100 %
    assert r.by_kind == {"warning": 1, "overdue": 1}
    r = await scan(pool, now=sh(3, 5, 9))
    assert r.by_kind == {"escalation": 1}
    rows = await pool.fetch("SELECT level_pct, kind, unit_code FROM sla_alerts ORDER BY level_pct")
    assert [tuple(x) for x in rows] == [(50, "warning", LEAD), (80, "warning", LEAD), (100, "overdue", LEAD),
                                        (150, "escalation", LEAD)]
    history = await pool.fetch("SELECT action, note FROM ticket_events WHERE ticket_id = $1 AND actor_id IS NULL "
                               "ORDER BY id", tid)
    assert [h["action"] for h in history] == ["overdue", "escalate"]
    assert await pool.fetchval("SELECT overdue FROM sla_clocks WHERE ticket_id = $1 AND stage = 'handle'", tid)


async def test_two_scheduler_instances_fire_exactly_once(runtime: Runtime, pool: asyncpg.Pool, cast: Cast,
                                                         db_url: str) -> None:
    past = await pool.fetchval("SELECT now() - interval '120 days'")
    async with pool.acquire() as conn:
        for _ in range(30):
            tid = await new_ticket(conn, cast, at=past)
            await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD, "assist_units": ["putuo"]},
                        at=past)
    clocks = await pool.fetchval("SELECT count(*) FROM sla_clocks")
    assert clocks == 30 * 4
    pool2 = await create_pool(db_url, runtime.settings, min_size=1, max_size=5)
    other = Runtime(runtime.settings, runtime.registry, Database(pool=pool2, url=db_url))
    try:
        # the scheduled job on two nodes at once, plus two lock-free scans racing each other
        results = await asyncio.gather(
            run_exclusively(runtime, JOB_ID, scan_job), run_exclusively(other, JOB_ID, scan_job),
            scan(pool, batch=7), scan(pool2, batch=7))
    finally:
        await pool2.close()
    fired = sum(r.alerts for r in results[2:]) + sum(r[1].alerts for r in results[:2] if r[0])
    assert fired == clocks * 4
    per_level = await pool.fetch("SELECT clock_id, level_pct, count(*) FROM sla_alerts GROUP BY 1, 2")
    assert len(per_level) == clocks * 4 and all(r["count"] == 1 for r in per_level)
    overdue_events = await pool.fetchval("SELECT count(*) FROM ticket_events WHERE action = 'overdue'")
    assert overdue_events == clocks
    assert (await scan(pool)).alerts == 0


async def test_the_scan_is_an_exclusive_scheduler_job(runtime: Runtime) -> None:
    from hotline.scheduler import build_scheduler

    jobs = build_scheduler(runtime)
    assert JOB_ID in jobs.job_ids
    job = jobs.scheduler.get_job(JOB_ID)
    assert job is not None and job.max_instances == 1
