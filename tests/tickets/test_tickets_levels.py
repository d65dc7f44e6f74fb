"""Multi-level dispatch (city -> district -> street and back), scoping per level,
regions and the suggested unit, refusals, supervision orders and 提级办理."""

from datetime import datetime
from typing import Any

import asyncpg
import pytest
from tickets_support import ABOVE, LEAD, SUB, Cast, _hash, new_ticket

from hotline.auth.model import User
from hotline.calendar import load_calendar
from hotline.calendar.core import SHANGHAI
from hotline.errors import Forbidden, NotFound, ValidationError
from hotline.sla.scan import scan
from hotline.tickets import views
from hotline.tickets.refusals import refusal_counts
from hotline.tickets.regions import save_region, set_rule, suggest_unit
from hotline.tickets.workflow import IllegalTransition, apply

DISTRICT, STREET, SIBLING, OTHER_DISTRICT = "dinghai", "dinghai-huannan", "dinghai-jiefang", "putuo"


def sh(m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=SHANGHAI)


async def _user(pool: asyncpg.Pool, name: str, *roles: str, unit: str | None) -> User:
    row = await pool.fetchrow(
        """INSERT INTO users (username, display_name, password_hash, roles, unit_code) VALUES ($1, $1, $2, $3, $4)
           RETURNING id, username, display_name, roles, unit_code, hotline_number, active""",
        name, _hash(), list(roles), unit)
    return User.from_row(row)


async def _clocks(conn: asyncpg.Connection, ticket_id: int, unit: str) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT c.* FROM sla_clocks c JOIN ticket_legs l ON l.id = c.leg_id "
        "WHERE c.ticket_id = $1 AND l.unit_code = $2 ORDER BY c.id", ticket_id, unit)
    return {r["stage"]: r for r in rows}


async def _ids(pool: asyncpg.Pool, user: User) -> set[int]:
    return {t["id"] for t in await views.list_tickets(pool, user, limit=500)}


async def test_city_to_district_to_street_and_back(pool: asyncpg.Pool, cast: Cast) -> None:
    cal = await load_calendar(pool)
    district = await _user(pool, "dh-disp", "dispatcher", unit=DISTRICT)
    street = await _user(pool, "hn-liaison", "liaison", unit=STREET)
    sibling = await _user(pool, "jf-liaison", "liaison", unit=SIBLING)
    other_district = await _user(pool, "pt-disp", "dispatcher", unit=OTHER_DISTRICT)
    t0 = sh(3, 2)  # Monday
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, region_code="330902003", at=t0)  # complaint: 15 working days
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": DISTRICT}, at=t0)
        d = await _clocks(conn, tid, DISTRICT)
        assert d["sign"]["deadline"] == sh(3, 3) and d["handle"]["deadline"] == sh(3, 23)
        # the district's dispatcher signs and passes it down to one of its streets
        await apply(conn, tid, "sign", district, at=sh(3, 2, 10))
        with pytest.raises(ValidationError):  # not a street of this district
            await apply(conn, tid, "subdispatch", district, {"unit_code": "putuo-shenjiamen"}, at=sh(3, 2, 11))
        result = await apply(conn, tid, "subdispatch", district, {"unit_code": STREET}, at=sh(3, 2, 11))
        assert result["state"] == "dispatched"
        s = await _clocks(conn, tid, STREET)
        assert s["sign"]["deadline"] == cal.add_working_days(sh(3, 2, 11), 1) == sh(3, 3, 11)
        # the street's own handling clock, due no later than the district's
        assert s["handle"]["deadline"] == sh(3, 23) < cal.add_working_days(sh(3, 2, 11), 15)
        d = await _clocks(conn, tid, DISTRICT)
        assert d["sign"]["outcome"] == "met" and d["handle"]["stopped_at"] is None  # still answers for it

        # scoping: the centre and the district's subtree see it; a sibling street and another district do not
        assert tid in await _ids(pool, cast.dispatcher)
        assert tid in await _ids(pool, district) and tid in await _ids(pool, street)
        assert tid not in await _ids(pool, sibling) and tid not in await _ids(pool, other_district)
        with pytest.raises(NotFound):
            await views.ticket_view(conn, tid, other_district)
        # a district's dispatcher acts for its unit, not for the centre
        with pytest.raises(Forbidden):
            await apply(conn, tid, "supervise", district, {"instruction": "快"}, at=sh(3, 2, 12))

        # the street signs, cannot reply past the district, replies up
        with pytest.raises(Forbidden):
            await apply(conn, tid, "sign", sibling, at=sh(3, 2, 13))
        await apply(conn, tid, "sign", street, at=sh(3, 2, 14))
        with pytest.raises(IllegalTransition, match="reply_up"):
            await apply(conn, tid, "reply", street, {"reply": "已处理", "basis": "现场"}, at=sh(3, 5))
        result = await apply(conn, tid, "reply_up", street, {"reply": "已清理占道摊点", "basis": "现场核查"},
                             at=sh(3, 5))
        assert result["state"] == "handling"
        assert await conn.fetchval("SELECT lead_unit_code FROM tickets WHERE id = $1", tid) == DISTRICT
        s = await _clocks(conn, tid, STREET)
        assert s["sign"]["outcome"] == "met" and s["handle"]["outcome"] == "met"
        assert (await _clocks(conn, tid, DISTRICT))["handle"]["stopped_at"] is None
        # the district reviews and replies to the centre
        result = await apply(conn, tid, "reply", district, {"reply": "经街道核查已整改", "basis": "现场核查"},
                             at=sh(3, 6))
        assert result["state"] == "reply_review"
        assert (await _clocks(conn, tid, DISTRICT))["handle"]["outcome"] == "met"
        view = await views.ticket_view(conn, tid, cast.dispatcher)
        levels = {leg["unit_code"]: leg["level"] for leg in view["legs"]}
        assert levels == {DISTRICT: 1, STREET: 2} and view["region_name"] == "环南街道"

        # a second ticket comes back up: the street returns it within its window
        t2 = await new_ticket(conn, cast, at=t0)
        await apply(conn, t2, "dispatch", cast.dispatcher, {"unit_code": DISTRICT}, at=t0)
        await apply(conn, t2, "sign", district, at=sh(3, 2, 10))
        await apply(conn, t2, "subdispatch", district, {"unit_code": STREET}, at=sh(3, 2, 11))
        result = await apply(conn, t2, "return_up", street, {"reason": "不在本街道辖区"}, at=sh(3, 3, 9))
        assert result["state"] == "handling"
        s = await _clocks(conn, t2, STREET)
        assert s["sign"]["outcome"] == "met" and s["handle"]["outcome"] == "cancelled"
        await apply(conn, t2, "subdispatch", district, {"unit_code": SIBLING}, at=sh(3, 3, 10))
        assert t2 in await _ids(pool, sibling)


async def test_regions_suggest_the_unit_and_dispatch_uses_it(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        # category first (the catalogue's department), then the region's own unit
        assert await suggest_unit(conn, "330902003", "0201") == "urban-mgmt"
        assert await suggest_unit(conn, "330902003", None) == "dinghai-huannan"
        assert await suggest_unit(conn, "330902002", None) == "dinghai"  # no unit: the district's
        # a region x category rule on the district covers its streets
        await set_rule(conn, {"region_code": "330902", "category_code": "02", "unit_code": "dinghai"}, user_id=None)
        assert await suggest_unit(conn, "330902003", "0201") == "dinghai"
        assert await suggest_unit(conn, "330903001", "0201") == "urban-mgmt"  # another district: unchanged
        tid = await new_ticket(conn, cast, region_code="330902003")
        await apply(conn, tid, "dispatch", cast.dispatcher, {})
        assert await conn.fetchval("SELECT lead_unit_code FROM tickets WHERE id = $1", tid) == "dinghai"
        with pytest.raises(ValidationError) as err:
            await new_ticket(conn, cast, region_code="999999")
        assert err.value.field == "region_code"
        # the tree is editable; codes are checked against their level and parent
        await save_region(conn, "330902003001", {"name": "某社区", "level": "community", "parent_code": "330902003"},
                          create=True, user_id=None)
        with pytest.raises(ValidationError):
            await save_region(conn, "33090200", {"name": "坏代码", "level": "street", "parent_code": "330902"},
                              create=True, user_id=None)
        with pytest.raises(ValidationError):
            await save_region(conn, "330903009", {"name": "错挂", "level": "street", "parent_code": "330902"},
                              create=True, user_id=None)


async def test_refusals_with_reason_codes_are_counted(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        for code in ("litigation", "litigation", "petition"):
            tid = await new_ticket(conn, cast, at=t0)
            await apply(conn, tid, "refuse", cast.agent, {"reason_code": code, "answer": "请通过法定途径解决"}, at=t0)
        tid = await new_ticket(conn, cast, at=t0)
        await apply(conn, tid, "transfer_out", cast.agent, {"reason_code": "emergency_119", "answer": "已转119"}, at=t0)
        tid = await new_ticket(conn, cast, at=t0)
        with pytest.raises(ValidationError) as err:  # an emergency is transferred, not refused
            await apply(conn, tid, "refuse", cast.agent, {"reason_code": "emergency_119", "answer": "x"}, at=t0)
        assert err.value.field == "reason_code"
        report = await refusal_counts(conn, start=sh(3, 1), end=sh(4, 1))
    counts = {(i["outcome"], i["reason_code"]): i["count"] for i in report["items"]}
    assert counts[("refused", "litigation")] == 2 and counts[("refused", "petition")] == 1
    assert counts[("transferred", "emergency_119")] == 1 and counts[("refused", "arbitration")] == 0
    assert report["totals"] == {"refused": 3, "transferred": 1} and report["tickets_taken"] == 5


async def test_supervision_orders_have_their_own_clock(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, at=t0)
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, tid, "sign", cast.liaison, at=sh(3, 2, 10))
        result = await apply(conn, tid, "supervise", cast.supervisor, {"instruction": "群众反映强烈，请立即处理"},
                             at=sh(3, 2, 11))
        order = await conn.fetchrow("SELECT * FROM supervision_orders WHERE ticket_id = $1", tid)
        assert order["unit_code"] == LEAD and order["reply_due_at"] == sh(3, 3, 11)  # 1 working day
        assert result["state"] == "handling"
    # the reply deadline passes: the scan marks the order's clock overdue
    fired = await scan(pool, now=sh(3, 3, 12))
    assert fired.by_kind.get("overdue", 0) >= 1
    async with pool.acquire() as conn:
        with pytest.raises(NotFound):  # another unit has no order to answer
            await apply(conn, tid, "supervise_reply", cast.other_liaison, {"reply": "x"}, at=sh(3, 3, 13))
        await apply(conn, tid, "supervise_reply", cast.liaison, {"reply": "已安排专人处理"}, at=sh(3, 3, 13))
        clock = await conn.fetchrow("SELECT * FROM sla_clocks WHERE id = $1", order["clock_id"])
        assert clock["outcome"] == "missed" and clock["stage"] == "supervise"
        assert (await conn.fetchrow("SELECT replied_at FROM supervision_orders WHERE id = $1", order["id"]))[0]


async def test_elevate_moves_the_ticket_to_a_higher_unit(pool: asyncpg.Pool, cast: Cast) -> None:
    t0 = sh(3, 2)
    async with pool.acquire() as conn:
        tid = await new_ticket(conn, cast, at=t0)
        await apply(conn, tid, "dispatch", cast.dispatcher, {"unit_code": LEAD}, at=t0)
        await apply(conn, tid, "sign", cast.liaison, at=sh(3, 2, 10))
        await apply(conn, tid, "subdispatch", cast.liaison, {"unit_code": SUB}, at=sh(3, 2, 11))
        with pytest.raises(ValidationError):  # not above the current unit
            await apply(conn, tid, "elevate", cast.supervisor, {"reason": "x", "unit_code": "putuo"}, at=sh(3, 3))
        result = await apply(conn, tid, "elevate", cast.supervisor, {"reason": "涉及多部门", "unit_code": ABOVE},
                             at=sh(3, 4))
        assert result["state"] == "dispatched"
        legs = await conn.fetch("SELECT unit_code, state FROM ticket_legs WHERE ticket_id = $1 ORDER BY id", tid)
        assert [tuple(r) for r in legs] == [(LEAD, "withdrawn"), (SUB, "withdrawn"), (ABOVE, "dispatched")]
        assert await conn.fetchval("SELECT lead_unit_code FROM tickets WHERE id = $1", tid) == ABOVE
        # the street leg had not signed within its day: that lateness stays
        assert (await _clocks(conn, tid, SUB))["sign"]["outcome"] == "missed"
