"""The three rates (响应率, 解决率, 满意率) per unit for a seeded month, checked against
figures computed by hand (docs/RATES.md gives the definitions)."""


import asyncpg
import pytest
from month_support import APRIL_1, MARCH, at, run, seed_march
from tickets_support import LEAD, OTHER, Cast

from hotline.errors import ValidationError
from hotline.reports.metrics import Period
from hotline.reports.rates import three_rates
from hotline.tickets.workflow import apply

EXPECTED = {
    LEAD: {"sign_met": 2, "sign_due": 4, "resolved": 1, "partly": 1, "unresolved": 1, "evaluated": 3, "rated": 3,
           "response_rate": 0.5, "resolution_rate": 0.3333, "satisfaction_rate": 0.6667},
    OTHER: {"sign_met": 2, "sign_due": 2, "resolved": 1, "partly": 0, "unresolved": 1, "evaluated": 2, "rated": 2,
            "response_rate": 1.0, "resolution_rate": 0.5, "satisfaction_rate": 0.5},
}


@pytest.fixture
async def march(pool: asyncpg.Pool, cast: Cast) -> dict[str, int]:
    async with pool.acquire() as conn:
        return await seed_march(conn, cast)


async def test_three_rates_per_unit_match_the_hand_computation(pool: asyncpg.Pool, march: dict[str, int]) -> None:
    rows = {r["unit_code"]: r for r in await three_rates(pool, MARCH, now=APRIL_1)}
    assert set(rows) == {LEAD, OTHER}
    for unit, expected in EXPECTED.items():
        assert {k: rows[unit][k] for k in expected} == expected, unit
    assert rows[LEAD]["unit_name"] == "综合行政执法局（城管）"
    total = (await three_rates(pool, MARCH, now=APRIL_1, group="total"))[0]
    assert (total["sign_met"], total["sign_due"], total["resolved"], total["evaluated"]) == (4, 6, 2, 5)
    assert total["response_rate"] == 0.6667 and total["resolution_rate"] == 0.4


async def test_a_unit_that_never_signs_is_late_not_absent(pool: asyncpg.Pool, march: dict[str, int]) -> None:
    # on 3 March 12:00 a4's clock has not run out yet: it is not counted either way
    early = await three_rates(pool, Period(MARCH.start, at(3, 12)), now=at(3, 12))
    lead = next(r for r in early if r["unit_code"] == LEAD)
    assert (lead["sign_met"], lead["sign_due"]) == (2, 3)  # a1, a3 met; a2 already late


async def test_the_resolution_is_recorded_at_callback_and_checked(pool: asyncpg.Pool, cast: Cast,
                                                                  march: dict[str, int]) -> None:
    row = await pool.fetchrow("SELECT resolution, satisfaction FROM tickets WHERE id = $1", march["a3"])
    assert (row["resolution"], row["satisfaction"]) == ("partly", 3)
    event = await pool.fetchval("SELECT detail->>'resolution' FROM ticket_events WHERE ticket_id = $1 "
                                "AND action = 'callback_close'", march["a3"])
    assert event == "partly"
    async with pool.acquire() as conn:
        t = await run(conn, cast, LEAD, at(5, 9), at(5, 10), None)
        await apply(conn, t, "reply", cast.liaison, {"reply": "已处理", "basis": "现场核实"}, at=at(5, 11))
        await apply(conn, t, "approve_reply", cast.dispatcher, {}, at=at(5, 12))
        with pytest.raises(ValidationError) as err:
            await apply(conn, t, "callback_close", cast.agent, {"satisfaction": 4, "resolution": "mostly"},
                        at=at(6, 9))
    assert err.value.field == "resolution"


async def test_the_rates_report_over_http(api_as, march: dict[str, int]) -> None:  # noqa: ANN001
    supervisor = await api_as("supervisor")
    resp = await supervisor.get("/api/v1/reports/rates?from=2026-03-01&to=2026-03-31")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body["definitions"]) >= {"response_rate", "resolution_rate", "satisfaction_rate"}
    rows = {r["unit_code"]: r for r in body["rows"]}
    # the report's now is the real clock, long after March: a4 counts as late as well
    assert rows[OTHER]["resolution_rate"] == 0.5 and rows[LEAD]["resolution_rate"] == 0.3333
    csv = await supervisor.get("/api/v1/reports/rates?from=2026-03-01&to=2026-03-31&format=csv")
    assert "解决率" in (await csv.read()).decode("utf-8-sig").splitlines()[0]
    agent = await api_as("agent")
    assert (await agent.get("/api/v1/reports/rates")).status == 403
