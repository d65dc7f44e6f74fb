"""Finding 6: calendar arithmetic over millennia is refused, not computed on the loop."""

from __future__ import annotations


async def test_working_time_between_year_1_and_9999_is_refused_naming_the_field(api_as) -> None:
    agent = await api_as("agent")
    resp = await agent.get("/api/v1/calendar/compute?start=0001-01-01T00:00&end=9999-12-31T00:00")
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["field"] == "end" and "9999-12-31" in err["message"]


async def test_infinite_or_overflowing_amounts_are_bad_input(api_as) -> None:
    agent = await api_as("agent")
    for query in ("working_days=inf", "working_hours=1e300", "working_days=nan"):
        resp = await agent.get(f"/api/v1/calendar/compute?start=2025-03-03T09:00&{query}")
        assert resp.status == 400, query
        assert (await resp.json())["error"]["field"] in ("working_days", "working_hours")
    resp = await agent.get("/api/v1/calendar/compute?start=9999-12-30T09:00&working_days=3")
    assert resp.status == 400


async def test_an_ordinary_span_still_computes(api_as) -> None:
    agent = await api_as("agent")
    resp = await agent.get("/api/v1/calendar/compute?start=2025-03-03T08:30&end=2025-03-04T08:30")
    assert resp.status == 200 and (await resp.json())["working_hours"] == 7.5
