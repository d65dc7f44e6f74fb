"""The state machine: every allowed transition, a sample of forbidden ones,
roles and units, concurrent transitions, merge."""

import asyncio

import asyncpg
import pytest
from tickets_support import (
    ASSIST,
    LEAD,
    OTHER,
    PATHS,
    SAMPLE_DATA,
    SUB,
    Cast,
    drive,
    new_ticket,
    who,
)

from hotline.errors import Forbidden, ValidationError
from hotline.tickets.model import SAME, STATES, TRANSITIONS
from hotline.tickets.workflow import DeadlinePassed, IllegalTransition, apply


def _actor_for(cast: Cast, roles: frozenset[str], unit_leg: str | None) -> str:
    if unit_leg == "assist":
        return "assist_liaison"
    if (unit_leg == "lead" and "liaison" in roles) or roles == {"liaison"}:
        return "liaison"
    for name in ("dispatcher", "supervisor", "agent", "admin"):
        if name in roles:
            return name
    raise AssertionError(roles)


async def test_every_allowed_transition(pool: asyncpg.Pool, cast: Cast) -> None:
    call_id = await pool.fetchval(
        "INSERT INTO calls (call_uid, hotline_number, caller_number) VALUES ('c-all', '12345', '13800001111') "
        "RETURNING id")
    checked = 0
    async with pool.acquire() as conn:
        for (state, action), rule in sorted(TRANSITIONS.items()):
            passed_down = action in ("reply_up", "return_up")
            ticket_id = await drive(conn, cast, "handling" if passed_down else state)
            data = dict(SAMPLE_DATA[action])
            if action == "link_call":
                data["call_id"] = call_id
            if action == "merge":
                data["master_id"] = await new_ticket(conn, cast)
            actor = who(cast, _actor_for(cast, rule.roles, rule.unit_leg))
            if passed_down:  # the lower unit of a ticket passed down
                await apply(conn, ticket_id, "subdispatch", cast.liaison, {"unit_code": SUB})
                if state == "handling":
                    await apply(conn, ticket_id, "sign", cast.sub_liaison)
                actor = cast.sub_liaison
            if action == "supervise_reply":  # an order to answer
                await apply(conn, ticket_id, "supervise", cast.supervisor, {"instruction": "请加快办理"})
            result = await apply(conn, ticket_id, action, actor, data)
            expected = state if rule.to == SAME else rule.to
            assert result["state"] == expected, (state, action)
            last = await conn.fetchrow(
                "SELECT action, from_state, to_state, actor_id FROM ticket_events WHERE ticket_id = $1 "
                "ORDER BY id DESC LIMIT 1", ticket_id)
            assert tuple(last) == (action, state, expected, actor.id)
            checked += 1
    assert checked == len(TRANSITIONS) > 60


FORBIDDEN = [
    ("intake", "sign"), ("intake", "reply"), ("dispatched", "approve_reply"), ("handling", "dispatch"),
    ("reply_review", "callback_close"), ("callback", "reply"), ("closed", "dispatch"), ("closed", "urge"),
    ("extension_review", "reply"), ("waiting_citizen", "reply"),
]


async def test_forbidden_transitions_name_the_state_and_the_allowed_actions(pool: asyncpg.Pool, cast: Cast) -> None:
    for state, action in FORBIDDEN:
        assert (state, action) not in TRANSITIONS
        await _refused(pool, cast, state, action)


async def _refused(pool: asyncpg.Pool, cast: Cast, state: str, action: str) -> None:
    async with pool.acquire() as conn:
        ticket_id = await drive(conn, cast, state)
        before = await conn.fetchval("SELECT count(*) FROM ticket_events WHERE ticket_id = $1", ticket_id)
        with pytest.raises(IllegalTransition) as err:
            await apply(conn, ticket_id, action, cast.admin, dict(SAMPLE_DATA.get(action, {})))
        assert err.value.status == 409
        assert err.value.details["current_state"] == state
        assert action not in err.value.details["allowed_actions"]
        assert state in err.value.message
        after = await conn.fetchval("SELECT count(*) FROM ticket_events WHERE ticket_id = $1", ticket_id)
        assert after == before  # nothing half-applied


async def test_roles_and_units_are_enforced(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        ticket_id = await drive(conn, cast, "dispatched")
        with pytest.raises(Forbidden):
            await apply(conn, ticket_id, "sign", cast.other_liaison)  # not the lead unit
        with pytest.raises(Forbidden):
            await apply(conn, ticket_id, "sign", cast.agent)  # not a liaison
        with pytest.raises(Forbidden):
            await apply(conn, ticket_id, "assist_sign", cast.other_liaison)
        await apply(conn, ticket_id, "assist_sign", cast.assist_liaison)
        with pytest.raises(IllegalTransition):
            await apply(conn, ticket_id, "assist_sign", cast.assist_liaison)  # signed already
        await apply(conn, ticket_id, "sign", cast.liaison)
        await apply(conn, ticket_id, "reply", cast.liaison, {"reply": "已处理", "basis": "现场核实"})
        with pytest.raises(Forbidden):
            await apply(conn, ticket_id, "approve_reply", cast.agent)


async def test_bad_input_is_refused_precisely(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        ticket_id = await drive(conn, cast, "intake")
        for data, field in [({"unit_code": "no-such-unit"}, "unit_code"),
                            ({"unit_code": LEAD, "assist_units": [LEAD]}, "assist_units"),
                            ({"unit_code": LEAD, "due_at": "2020-01-01T00:00:00+08:00"}, "due_at")]:
            with pytest.raises(ValidationError) as err:
                await apply(conn, ticket_id, "dispatch", cast.dispatcher, data)
            assert err.value.field == field
        assert await conn.fetchval("SELECT count(*) FROM ticket_legs WHERE ticket_id = $1", ticket_id) == 0
        with pytest.raises(ValidationError) as err:
            await new_ticket(conn, cast, category_code="nope")
        assert err.value.field == "category_code"
        with pytest.raises(ValidationError) as err:
            await new_ticket(conn, cast, hotline_number="99999")
        assert err.value.field == "hotline_number"
        handling = await drive(conn, cast, "handling")
        with pytest.raises(ValidationError) as err:
            await apply(conn, handling, "reply", cast.liaison, {"reply": "已处理"})
        assert err.value.field == "basis"
        # an extension after the deadline: the clock's deadline is in the past
        await conn.execute("UPDATE sla_clocks SET deadline = now() - interval '1 hour' "
                           "WHERE ticket_id = $1 AND stage = 'handle'", handling)
        with pytest.raises(DeadlinePassed) as err:
            await apply(conn, handling, "request_extension", cast.liaison, {"days": 3, "reason": "x"})
        assert "期限之前" in err.value.message


async def test_dispatch_defaults_to_the_catalogue_unit(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        ticket_id = await new_ticket(conn, cast, category_code="0305")  # 违法停车 → public-security
        await apply(conn, ticket_id, "dispatch", cast.agent, {})
        assert await conn.fetchval("SELECT lead_unit_code FROM tickets WHERE id = $1", ticket_id) == OTHER


async def test_concurrent_transitions_cannot_both_win(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        ticket_id = await drive(conn, cast, "handling")

    async def attempt(action: str, data: dict) -> str:
        async with pool.acquire() as conn:
            try:
                await apply(conn, ticket_id, action, cast.liaison, data)
                return "won"
            except IllegalTransition:
                return "409"

    # reply and extension are both allowed from handling, and neither from the other's result
    reply = {"reply": "已处理", "basis": "现场核实"}
    extension = {"days": 2, "reason": "需协调"}
    outcomes = await asyncio.gather(attempt("reply", reply), attempt("request_extension", extension),
                                    attempt("reply", reply), attempt("request_extension", extension))
    assert sorted(outcomes) == ["409", "409", "409", "won"]
    events = await pool.fetchval("SELECT count(*) FROM ticket_events WHERE ticket_id = $1 "
                                 "AND action IN ('reply', 'request_extension')", ticket_id)
    assert events == 1


async def test_return_review_redispatch_moves_the_lead_and_its_clocks(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        ticket_id = await drive(conn, cast, "return_review")
        with pytest.raises(ValidationError):
            await apply(conn, ticket_id, "redispatch", cast.dispatcher, {"unit_code": LEAD})
        await apply(conn, ticket_id, "redispatch", cast.dispatcher, {"unit_code": OTHER})
        legs = await conn.fetch("SELECT unit_code, role, state FROM ticket_legs WHERE ticket_id = $1 ORDER BY id",
                                ticket_id)
        assert [tuple(r) for r in legs] == [(LEAD, "lead", "withdrawn"), (ASSIST, "assist", "dispatched"),
                                            (OTHER, "lead", "dispatched")]
        running = await conn.fetch(
            "SELECT l.unit_code, c.stage FROM sla_clocks c JOIN ticket_legs l ON l.id = c.leg_id "
            "WHERE c.ticket_id = $1 AND c.stopped_at IS NULL ORDER BY 1, 2", ticket_id)
        assert {r["unit_code"] for r in running} == {ASSIST, OTHER}
        with pytest.raises(Forbidden):  # the old lead unit can no longer act
            await apply(conn, ticket_id, "sign", cast.liaison)


async def test_merge_into_a_master_reaches_every_caller(pool: asyncpg.Pool, cast: Cast) -> None:
    async with pool.acquire() as conn:
        master = await drive(conn, cast, "dispatched")
        dup = await new_ticket(conn, cast, caller_number="13900002222", caller_name="李四")
        dup2 = await new_ticket(conn, cast, caller_number="13900003333", caller_name="王五")
        with pytest.raises(ValidationError) as err:
            await apply(conn, master, "merge", cast.dispatcher, {"master_id": master})
        assert "不能并入自己" in err.value.message and err.value.code == "merge_into_itself"
        await apply(conn, dup2, "merge", cast.dispatcher, {"master_id": dup})
        await apply(conn, dup, "merge", cast.dispatcher, {"master_id": master})  # dup2 follows dup
        assert await conn.fetchval("SELECT master_id FROM tickets WHERE id = $1", dup2) == master
        with pytest.raises(IllegalTransition):  # a merged ticket is terminal
            await apply(conn, dup, "merge", cast.dispatcher, {"master_id": dup2})
        with pytest.raises(ValidationError) as err:
            await apply(conn, master, "merge", cast.dispatcher, {"master_id": dup})  # cycle
        assert "循环" in err.value.message and err.value.code == "merge_cycle"
        for action, actor, data in PATHS["closed"][1:]:
            await apply(conn, master, action, who(cast, actor), dict(data))
        rows = await conn.fetch("SELECT id, state, closed_at IS NOT NULL AS closed FROM tickets "
                                "WHERE id = ANY($1::bigint[]) ORDER BY id", [master, dup, dup2])
        assert [tuple(r) for r in rows] == [(master, "closed", True), (dup, "merged", True), (dup2, "merged", True)]
        from hotline.tickets.views import callback_plan

        plan = await callback_plan(conn, dup2, cast.agent)
        assert plan["master_id"] == master
        assert [c["number"] for c in plan["callers"]] == ["13800001111", "13900002222", "13900003333"]


async def test_states_table_is_consistent() -> None:
    for (state, _action), rule in TRANSITIONS.items():
        assert state in STATES and (rule.to == SAME or rule.to in STATES)
    reachable = {"intake"} | {r.to for r in TRANSITIONS.values() if r.to != SAME}
    assert reachable == set(STATES)
