"""Finding 3: the masked caller number cannot be recovered by filters, tickets or screen-pops."""

from __future__ import annotations

from security_support import place_call

NUMBER = "13812345678"


async def test_an_agent_cannot_confirm_a_full_number_with_the_calls_filter(api_as, pool) -> None:
    await place_call(pool, caller=NUMBER)
    agent = await api_as("agent")
    resp = await agent.get(f"/api/v1/calls?caller={NUMBER}")
    assert resp.status == 403 and (await resp.json())["error"]["field"] == "caller"
    # the masked form, which the agent already sees, still finds the calls
    found = await (await agent.get("/api/v1/calls?caller=138****5678")).json()
    assert found["total"] == 1 and found["items"][0]["caller_number"] == "138****5678"
    boss = await api_as("supervisor")
    assert (await (await boss.get(f"/api/v1/calls?caller={NUMBER}")).json())["total"] == 1
    audited = await pool.fetch("SELECT user_id, detail FROM audit_log WHERE action = 'calls.search_by_caller'")
    assert [r["user_id"] for r in audited] == [boss.user.id]


async def test_an_agent_cannot_confirm_a_full_number_with_the_tickets_filter(api_as, pool) -> None:
    agent = await api_as("agent")
    resp = await agent.get(f"/api/v1/tickets?caller={NUMBER}")
    assert resp.status == 403 and (await resp.json())["error"]["field"] == "caller"
    assert (await agent.get("/api/v1/tickets?caller=138****5678")).status == 200
    boss = await api_as("supervisor")
    assert (await boss.get(f"/api/v1/tickets?caller={NUMBER}")).status == 200
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'tickets.search_by_caller' "
                               "AND user_id = $1", boss.user.id) == 1


async def test_a_ticket_cannot_be_opened_on_someone_elses_call(api_as, pool) -> None:
    owner = await api_as("agent")
    call_id = await place_call(pool, caller=NUMBER, agent_id=owner.user.id)
    stranger = await api_as("agent")
    resp = await stranger.post(f"/api/v1/console/calls/{call_id}/ticket", json={"subject": "路灯不亮"})
    assert resp.status == 403
    assert "来电" in (await resp.json())["error"]["message"]
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 0
    assert (await owner.post(f"/api/v1/console/calls/{call_id}/ticket", json={"subject": "路灯不亮"})).status == 201


async def test_the_screen_pop_is_only_for_those_on_the_call(api_as, pool) -> None:
    owner = await api_as("agent")
    call_id = await place_call(pool, caller=NUMBER, agent_id=owner.user.id)
    stranger = await api_as("agent")
    assert (await stranger.get(f"/api/v1/console/calls/{call_id}/pop")).status == 403
    assert (await owner.get(f"/api/v1/console/calls/{call_id}/pop")).status == 200
    boss = await api_as("supervisor")
    assert (await boss.get(f"/api/v1/console/calls/{call_id}/pop")).status == 200
    expert = await api_as("expert")
    assert (await expert.get(f"/api/v1/console/calls/{call_id}/pop")).status == 403
    await pool.execute("INSERT INTO transfer_attempts (call_id, kind, hotline_number, expert_user_id, outcome) "
                       "VALUES ($1, 'expert', '12345', $2, 'connecting')", call_id, expert.user.id)
    assert (await expert.get(f"/api/v1/console/calls/{call_id}/pop")).status == 200
