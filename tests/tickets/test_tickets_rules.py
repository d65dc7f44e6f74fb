"""SLA rules a unit cannot game (config/sla.yaml): each test shows a unit trying and
failing. Time is injected (``at=``); nothing depends on when the test runs."""

from datetime import datetime, timedelta

import asyncpg
import pytest
from tickets_support import LEAD, OTHER, Cast, new_ticket

from hotline.calendar import load_calendar
from hotline.calendar.core import SHANGHAI
from hotline.errors import ConfigError, Forbidden, ValidationError
from hotline.sla.config import load_sla_config, parse_sla_config
from hotline.tickets.workflow import LimitReached, ReturnWindowClosed, apply


def sh(m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=SHANGHAI)


async def _clock(conn: asyncpg.Connection, ticket_id: int, stage: str, unit: str = LEAD) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT c.* FROM sla_clocks c JOIN ticket_legs l ON l.id = c.leg_id "
        "WHERE c.ticket_id = $1 AND c.stage = $2 AND l.unit_code = $3 ORDER BY c.id DESC LIMIT 1",
        ticket_id, stage, unit)


async def test_urgent_acceptance_runs_on_the_wall_clock(pool: asyncpg.Pool, cast: Cast) -> None:
    saturday_night = sh(3, 7, 22)  # a water cut reported on Saturday 22:00
    async with pool.acquire() as conn:
        urgent = await new_ticket(conn, cast, urgency="urgent", subject="停水", at=saturday_night)
        await apply(conn, urgent, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=saturday_night)
        normal = await new_ticket(conn, cast, at=saturday_night)
        await apply(conn, normal, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=saturday_night)
        sign = await _clock(conn, urgent, "sign")
        # 2 hours on the wall clock: Saturday midnight, not Monday 10:30 (2 working hours)
        assert sign["natural_time"] and sign["deadline"] == sh(3, 8, 0)
        handle = await _clock(conn, urgent, "handle")
        assert handle["deadline"] == saturday_night + timedelta(hours=24)
        # a normal ticket still counts working time: one working day from Monday 08:30
        assert (await _clock(conn, normal, "sign"))["deadline"] == sh(3, 9, 17, 30)
        # the unit signs on Monday morning: the urgent acceptance was missed
        await apply(conn, urgent, "sign", cast.liaison, at=sh(3, 9, 8, 40))
        assert (await conn.fetchrow("SELECT outcome FROM sla_clocks WHERE id = $1", sign["id"]))["outcome"] == "missed"


async def test_a_unit_cannot_return_after_the_window_without_the_centre(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)  # Monday
    async with pool.acquire() as conn:
        early = await new_ticket(conn, cast, at=t0)
        await apply(conn, early, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, early, "return", cast.liaison, {"reason": "不属于本单位"}, at=sh(3, 3, 16))
        assert await conn.fetchval("SELECT state FROM tickets WHERE id = $1", early) == "return_review"

        late = await new_ticket(conn, cast, at=t0)
        await apply(conn, late, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, late, "sign", cast.liaison, at=sh(3, 2, 10))
        # two working days after dispatch end on Wednesday 09:00; on Thursday the unit tries to hand it back
        with pytest.raises(ReturnWindowClosed) as err:
            await apply(conn, late, "return", cast.liaison, {"reason": "不属于本单位"}, at=sh(3, 5))
        assert err.value.status == 409 and "退单时限已过" in err.value.message
        assert await conn.fetchval("SELECT state FROM tickets WHERE id = $1", late) == "handling"
        # the centre may return it for the unit (its approval), and the history says so
        await apply(conn, late, "return", cast.supervisor, {"reason": "经核实确非该单位职责"}, at=sh(3, 5))
        detail = await conn.fetchval("SELECT detail FROM ticket_events WHERE ticket_id = $1 AND action = 'return'",
                                     late)
        assert detail["late_return_approved_by_centre"] is True


async def test_a_late_return_keeps_the_units_lateness(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, at=t0)
        # handling due Tuesday noon; the unit neither signs nor handles, and returns on Tuesday 16:00
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD, "due_at": sh(3, 3, 12).isoformat()},
                    at=t0)
        await apply(conn, tid, "return", cast.liaison, {"reason": "不属于本单位"}, at=sh(3, 3, 16))
        # the centre takes two days to review and redispatches
        await apply(conn, tid, "redispatch", cast.dispatcher, {"unit_code": OTHER}, at=sh(3, 5, 15))
        rows = await conn.fetch(
            "SELECT stage, outcome, stopped_at, overdue FROM sla_clocks c JOIN ticket_legs l ON l.id = c.leg_id "
            "WHERE c.ticket_id = $1 AND l.unit_code = $2 ORDER BY stage", tid, LEAD)
        got = {r["stage"]: r for r in rows}
        # both missed (not cancelled), stopped when the unit returned (the centre's review is not its time)
        assert got["sign"]["outcome"] == "missed" and got["handle"]["outcome"] == "missed"
        assert got["handle"]["stopped_at"] == sh(3, 3, 16) and got["handle"]["overdue"]
        # a return on time is not held against the unit: cancelled, not met or missed
        ok = await new_ticket(conn, cast, at=t0)
        await apply(conn, ok, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, ok, "return", cast.liaison, {"reason": "不属于本单位"}, at=sh(3, 2, 11))
        await apply(conn, ok, "redispatch", cast.dispatcher, {"unit_code": OTHER}, at=sh(3, 5, 15))
        assert (await _clock(conn, ok, "handle"))["outcome"] == "cancelled"
        assert (await _clock(conn, ok, "sign"))["outcome"] == "met"


async def test_waiting_on_the_citizen_needs_the_centre_and_is_capped(pool: asyncpg.Pool, cast: Cast) -> None:
    cal = await load_calendar(pool)
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, at=t0)  # complaint: 15 working days
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, tid, "sign", cast.liaison, at=sh(3, 2, 10))
        # the unit cannot stop its own clock
        with pytest.raises(Forbidden):
            await apply(conn, tid, "await_citizen", cast.liaison, {"reason": "等市民"}, at=sh(3, 3))
        await apply(conn, tid, "request_await", cast.liaison, {"reason": "请市民补充房产证明"}, at=sh(3, 3))
        assert await conn.fetchval("SELECT state FROM tickets WHERE id = $1", tid) == "handling"
        await apply(conn, tid, "await_citizen", cast.dispatcher, at=sh(3, 3, 10))
        reason = await conn.fetchval(
            "SELECT detail->>'reason' FROM ticket_events WHERE ticket_id = $1 AND action = 'await_citizen'", tid)
        assert reason == "请市民补充房产证明"  # the centre approved what the unit asked
        # never resumed: the pause counts for at most 5 working days, then the clock runs again
        handle = await _clock(conn, tid, "handle")
        assert handle["deadline"] == cal.add_working_days(t0, 15 + 5)
        await apply(conn, tid, "resume", cast.liaison, at=sh(3, 4))
        await apply(conn, tid, "await_citizen", cast.dispatcher, {"reason": "再次补充"}, at=sh(3, 5))
        await apply(conn, tid, "resume", cast.liaison, at=sh(3, 5, 11))
        # a third pause is over the limit (2 per unit)
        with pytest.raises(LimitReached):
            await apply(conn, tid, "await_citizen", cast.dispatcher, {"reason": "第三次"}, at=sh(3, 6))


async def test_extensions_are_capped_in_days_and_count(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, at=t0)
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, tid, "sign", cast.liaison, at=sh(3, 2, 10))
        with pytest.raises(ValidationError) as err:  # more than max_days (15) in one request
            await apply(conn, tid, "request_extension", cast.liaison, {"days": 16, "reason": "需要"}, at=sh(3, 3))
        assert err.value.field == "days"
        for day in (3, 4):
            await apply(conn, tid, "request_extension", cast.liaison, {"days": 5, "reason": "需协调"}, at=sh(3, day))
            await apply(conn, tid, "approve_extension", cast.supervisor, {}, at=sh(3, day, 11))
        with pytest.raises(LimitReached):  # a third extension: max_count is 2
            await apply(conn, tid, "request_extension", cast.liaison, {"days": 1, "reason": "再延"}, at=sh(3, 5))
        assert await conn.fetchval("SELECT extended_count FROM tickets WHERE id = $1", tid) == 2


def test_the_rules_file_is_checked_at_start() -> None:
    config = load_sla_config()
    assert config.is_wall("urgent", "sign") and not config.is_wall("normal", "sign")
    assert config.return_window_working_days == 2 and config.extension_max_count == 2
    with pytest.raises(ConfigError, match="return_windw"):
        parse_sla_config({"return_windw": 2})
    with pytest.raises(ConfigError, match="time_basis.urgent.sign"):
        parse_sla_config({"time_basis": {"urgent": {"sign": "sometimes"}}})
    with pytest.raises(ConfigError, match="extension.max_count"):
        parse_sla_config({"extension": {"max_count": -1}})
    # safe defaults when the file says nothing
    assert parse_sla_config({}).is_wall("critical", "handle")
