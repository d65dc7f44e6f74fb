"""Finding 4: only those on a live call may transfer it."""

from __future__ import annotations

from security_support import place_call


async def test_an_agent_cannot_transfer_a_call_that_is_not_theirs(api_as, pool) -> None:
    owner = await api_as("agent")
    call_id = await place_call(pool, line="12345", agent_id=owner.user.id)
    stranger = await api_as("agent")
    resp = await stranger.post(f"/api/v1/calls/{call_id}/transfer", json={"kind": "subcenter", "target": "12366"})
    assert resp.status == 403
    assert "转接" in (await resp.json())["error"]["message"]
    assert await pool.fetchval("SELECT count(*) FROM transfer_attempts WHERE call_id = $1", call_id) == 0
    resp = await owner.post(f"/api/v1/calls/{call_id}/transfer", json={"kind": "subcenter", "target": "12366"})
    assert resp.status != 403, await resp.text()


async def test_an_agent_whose_seat_is_on_the_call_and_a_supervisor_may_transfer(api_as, pool) -> None:
    seated = await api_as("agent")
    call_id = await place_call(pool, line="12345")
    await pool.execute("INSERT INTO seats (user_id, state, current_call_id) VALUES ($1, 'on_call', $2)",
                       seated.user.id, call_id)
    body = {"kind": "subcenter", "target": "12366"}
    assert (await seated.post(f"/api/v1/calls/{call_id}/transfer", json=body)).status != 403
    boss = await api_as("supervisor")
    assert (await boss.post(f"/api/v1/calls/{call_id}/transfer", json=body)).status != 403
