"""A supervisor forces a seat onto a break or signs it off (强制小休 / 强制签出) from the
supervisor console, in real headless chromium: the seat table offers both only for seats
not on a call (空闲, 话后处理, 小休); 强制小休 sends the chosen reason, the row, the
database and the audit log follow, and so does the agent's own console (pushed, no
reload); 强制签出 asks first, and a dismissed question sends nothing; a refusal (the seat
went on a call meanwhile) is shown as the server words it and the list is reloaded.

These tests configure no telephone system, so ``pbx_updated`` is null; the queue
membership following in Asterisk is tested under tests/telephony."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from seat_table_support import answer_next_dialog, requests_sent, row
from seat_table_support import click_and_answer as seat_click

from hotline.calls import store

pytestmark = pytest.mark.browser

CALLER = "13812345678"


async def set_seat(pool: asyncpg.Pool, user_id: int, state: str, reason: str | None = None) -> None:
    await pool.execute(
        """INSERT INTO seats (user_id, state, reason) VALUES ($1, $2, $3)
           ON CONFLICT (user_id) DO UPDATE SET state = $2, reason = $3, since = now(), current_call_id = NULL""",
        user_id, state, reason)


def state_puts(page: Any) -> list[tuple[str, Any]]:
    """Every forced state change the page sends: (path, body)."""
    return requests_sent(page, "PUT", "/state")


async def click_and_answer(page: Any, button: Any) -> tuple[int, dict[str, Any], Any]:
    """Click a force button; the server's status and body, and the request the page sent."""
    return await seat_click(page, button, "PUT", "/state")


async def forced_audit(pool: asyncpg.Pool, user_id: int) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        """SELECT user_id, detail->>'from' AS was, detail->>'to' AS became, detail->>'reason' AS reason
             FROM audit_log WHERE action = 'seat.forced' AND object_type = 'user' AND object_id = $1 ORDER BY id""",
        str(user_id))
    return [tuple(r) for r in rows]


async def test_supervisor_forces_a_break_and_signs_off_and_the_agent_console_follows(pages, pool, place_call) -> None:
    agent = await pages.user("agent", display_name="王晓燕")
    talking = await pages.user("agent", display_name="孙丽")
    away = await pages.user("agent", display_name="刘海涛")  # never signed on: no seat row, 离线
    expert = await pages.user("expert", display_name="李建国（人社专家）", hotline_number="12333")
    call_id = await place_call("12345", CALLER, agent_id=talking.id, state="answered")
    async with pool.acquire() as conn, conn.transaction():
        assert await store.seat_on_call(conn, talking.id, call_id)
    await set_seat(pool, expert.id, "after_call")
    supervisor = await pages.user("supervisor", display_name="赵班长")

    # the agent signs on at the desk (置闲) and walks away; the page stays open
    desk = await pages.sign_in(agent, expect="agent")
    await desk.click("button[data-state=ready]")
    await desk.wait_for_selector("#seat-state:has-text('空闲')")
    await desk.evaluate("window.notReloaded = true")

    page = await pages.sign_in(supervisor, expect="supervisor")
    puts = state_puts(page)
    await row(page, agent.id).locator("button[data-force]").first.wait_for()
    headers = await page.locator("#seat-table tr").first.locator("th").all_inner_texts()
    assert headers[-2:] == ["管理", "监控"]

    # 空闲 and 话后处理: a reason select, 强制小休 and 强制签出; 通话中 and 离线: nothing
    for seat in (agent, expert):
        cell = row(page, seat.id).locator("td.force")
        assert await cell.locator("button").evaluate_all("bs => bs.map(b => [b.dataset.force, b.textContent])") == [
            ["break", "强制小休"], ["offline", "强制签出"]]
        assert await cell.locator("select option").all_inner_texts() == ["用餐", "休息", "培训", "会议", "其他"]
    for seat in (talking, away):
        assert await row(page, seat.id).locator("td.force").inner_text() == ""
        assert await row(page, seat.id).locator("[data-force], select").count() == 0
    assert await row(page, talking.id).locator("td.state-on_call").inner_text() == "通话中"
    assert await row(page, away.id).locator("td.state-offline").inner_text() == "离线"
    await pages.shot(page, "supervisor-force-seat")

    # 强制小休 (会议): the reason is sent with the CSRF token; row, database, audit and the agent's page follow
    await row(page, agent.id).locator("select[data-force-reason]").select_option("会议")
    status, body, request = await click_and_answer(page, row(page, agent.id).locator("button[data-force=break]"))
    assert request.url.endswith(f"/api/v1/seats/{agent.id}/state")
    assert request.post_data_json == {"state": "break", "reason": "会议"}
    assert request.headers.get("x-csrf-token")
    assert status == 200
    assert (body["seat"]["state"], body["seat"]["reason"], body["pbx_updated"], body["note"]) == ("break", "会议", None, None)
    await page.locator(".toast", has_text="已将 王晓燕 设为小休（会议）").first.wait_for()
    await row(page, agent.id).locator("td.state-break", has_text="小休（会议）").wait_for()
    stored = await pool.fetchrow("SELECT state, reason FROM seats WHERE user_id = $1", agent.id)
    assert (stored["state"], stored["reason"]) == ("break", "会议")
    assert await forced_audit(pool, agent.id) == [(supervisor.id, "ready", "break", "会议")]

    await desk.wait_for_selector("#seat-state.state-break:has-text('小休')")
    assert await desk.locator("#seat-panel .tag").inner_text() == "会议"
    # and the agent is told who did it
    await desk.locator(".toast", has_text="班长 赵班长 已将您的状态改为「小休（会议）」").first.wait_for()
    assert await desk.evaluate("window.notReloaded === true")
    await pages.shot(desk, "agent-forced-break")

    # on a break the row still offers both (another reason, or signing off)
    assert await row(page, agent.id).locator("button[data-force]").count() == 2

    # 强制签出 asks; dismissed, nothing is sent and the seat stays on its break
    questions: list[str] = []
    answer_next_dialog(page, questions, accept=False)
    await row(page, agent.id).locator("button[data-force=offline]").click()
    assert questions == ["确定将 王晓燕 强制签出？"]
    assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", agent.id) == "break"

    # accepted, the seat is signed off (the only offline request: the dismissed one sent nothing)
    answer_next_dialog(page, questions, accept=True)
    status, body, request = await click_and_answer(page, row(page, agent.id).locator("button[data-force=offline]"))
    assert questions == ["确定将 王晓燕 强制签出？"] * 2
    assert request.post_data_json == {"state": "offline"}
    assert (status, body["seat"]["state"], body["seat"]["reason"]) == (200, "offline", None)
    await page.locator(".toast", has_text="已将 王晓燕 签出").first.wait_for()
    await row(page, agent.id).locator("td.state-offline", has_text="离线").wait_for()
    assert await row(page, agent.id).locator("[data-force]").count() == 0
    assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", agent.id) == "offline"
    assert await forced_audit(pool, agent.id) == [(supervisor.id, "ready", "break", "会议"),
                                                  (supervisor.id, "break", "offline", None)]
    await desk.wait_for_selector("#seat-state.state-offline:has-text('离线')")
    await desk.locator(".toast", has_text="班长 赵班长 已将您的状态改为「离线」").first.wait_for()
    assert await desk.evaluate("window.notReloaded === true")

    assert puts == [(f"api/v1/seats/{agent.id}/state", {"state": "break", "reason": "会议"}),
                    (f"api/v1/seats/{agent.id}/state", {"state": "offline"})]


async def test_a_refusal_is_shown_and_the_list_reloaded(pages, pool) -> None:
    agent = await pages.user("agent", display_name="王晓燕")
    await set_seat(pool, agent.id, "ready")
    supervisor = await pages.user("supervisor")

    page = await pages.sign_in(supervisor, expect="supervisor")
    button = row(page, agent.id).locator("button[data-force=break]")
    await button.wait_for()
    # the seat goes on a call between the list being drawn and the click reaching the server
    # (written without the push the call flow sends): done as the request leaves the page,
    # so no redraw can take the button away before the click
    async def on_a_call_first(route: Any) -> None:
        await pool.execute("UPDATE seats SET state = 'on_call' WHERE user_id = $1", agent.id)
        await route.continue_()

    await page.route(f"**/api/v1/seats/{agent.id}/state", on_a_call_first)
    status, body, request = await click_and_answer(page, button)
    assert request.post_data_json == {"state": "break", "reason": "用餐"}
    assert (status, body["error"]["code"]) == (409, "not_allowed")
    message = body["error"]["message"]
    assert "王晓燕" in message and "只能在非通话时强制小休或签出" in message
    toast = page.locator(".toast.error", has_text=message).last
    await toast.wait_for()
    assert await toast.inner_text() == message
    # reloaded: the row shows the call and offers nothing; nothing was changed or audited
    await row(page, agent.id).locator("td.state-on_call", has_text="通话中").wait_for()
    assert await row(page, agent.id).locator("[data-force]").count() == 0
    assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", agent.id) == "on_call"
    assert await forced_audit(pool, agent.id) == []


async def test_an_agent_may_not_force_a_seat(pages, pool) -> None:
    idle = await pages.user("agent", display_name="王晓燕")
    await set_seat(pool, idle.id, "ready")
    other = await pages.user("agent", display_name="孙丽")

    page = await pages.sign_in(other, expect="agent")
    refused = await page.evaluate("""async (id) => {
        const token = (await (await fetch('/api/v1/auth/me')).json()).csrf_token;
        const r = await fetch(`/api/v1/seats/${id}/state`, {method: 'PUT',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
            body: JSON.stringify({state: 'break', reason: '用餐'})});
        return [r.status, (await r.json()).error.code];
    }""", idle.id)
    assert refused == [403, "forbidden"]
    assert await pool.fetchval("SELECT state FROM seats WHERE user_id = $1", idle.id) == "ready"
