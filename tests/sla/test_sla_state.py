"""The console's deadline colour is the server's verdict (sla_state) and agrees with the
supervisor's at-risk list (open warning alerts and overdue clocks); a unit's dispatcher
sees its subtree's alerts only. The scan's clock is injected: the instant of a clock's
own warning mark, whatever the time of day the test runs at."""

from datetime import timedelta
from typing import Any

import asyncpg

from hotline.sla.scan import scan


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


BODY = {"hotline_number": "12345", "subject": "供水管道漏水", "facts": "路面冒水", "caller_number": "13800003333",
        "kind": "help"}


async def test_colour_and_at_risk_list_agree(api_as: Any, pool: asyncpg.Pool, seeded: Any) -> None:
    centre = await api_as("dispatcher")
    sup = await api_as("supervisor")
    district = await api_as("dispatcher", unit_code="dinghai")
    other = await api_as("dispatcher", unit_code="putuo")
    watched = (await _json(await centre.post("/api/v1/tickets", json={**BODY, "dispatch": {"unit_code": "dinghai"}}),
                           201))["ticket"]
    # newly dispatched: green, and nobody's at-risk list has it
    assert watched["sla_state"] == "normal"
    assert (await _json(await sup.get("/api/v1/sla/alerts?kind=warning&open=1"), 200))["items"] == []
    # the scan reaches the first warning mark of its sign clock
    mark = await pool.fetchval(
        "SELECT marks[1] FROM sla_clocks WHERE ticket_id = $1 AND stage = 'sign'", watched["id"])
    await scan(pool, now=mark + timedelta(seconds=1))
    fresh = (await _json(await centre.post("/api/v1/tickets", json={**BODY, "dispatch": {"unit_code": "dinghai"}}),
                         201))["ticket"]  # dispatched after the scan: nothing fired for it
    view = (await _json(await centre.get(f"/api/v1/tickets/{watched['id']}"), 200))["ticket"]
    assert view["sla_state"] == "warning" and view["sla_state_name"] == "临期"
    assert (await _json(await centre.get(f"/api/v1/tickets/{fresh['id']}"), 200))["ticket"]["sla_state"] == "normal"
    listed = {t["id"]: t["sla_state"] for t in (await _json(await centre.get("/api/v1/tickets"), 200))["items"]}
    assert listed[watched["id"]] == "warning" and listed[fresh["id"]] == "normal"
    warnings = (await _json(await sup.get("/api/v1/sla/alerts?kind=warning&open=1"), 200))["items"]
    assert {a["ticket_id"] for a in warnings} == {watched["id"]}
    # the district's dispatcher sees its unit's alert, another district's does not
    assert {a["ticket_id"] for a in (await _json(await district.get("/api/v1/sla/alerts"), 200))["items"]} == {
        watched["id"]}
    assert (await _json(await other.get("/api/v1/sla/alerts"), 200))["items"] == []
    # once signed, the sign clock is no longer at risk: green again, off the open list
    await _json(await district.post(f"/api/v1/tickets/{watched['id']}/actions/sign", json={}), 200)
    view = (await _json(await centre.get(f"/api/v1/tickets/{watched['id']}"), 200))["ticket"]
    assert view["sla_state"] == "normal"
    assert (await _json(await sup.get("/api/v1/sla/alerts?kind=warning&open=1"), 200))["items"] == []
