"""Supervisor monitoring (监听 / 耳语 / 强插) from the supervisor console, in real headless
chromium: a seat on a call has the three buttons (disabled when the seat has no phone),
a seat not on a call has none; a click posts the mode and the page shows what the server
answers (here the refusals: these tests configure no telephone system, and a supervisor
without a seat phone is told so); 强插 asks first, and a dismissed question sends nothing;
an agent may not monitor; the admin gives supervisors their seat phone.

The success path (Asterisk ringing the supervisor's phone and ChanSpy) needs a real
Asterisk and is tested with one under tests/telephony."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from seat_table_support import answer_next_dialog, requests_sent, row
from seat_table_support import click_and_answer as seat_click

from hotline.calls import store

pytestmark = pytest.mark.browser

CALLER = "13812345678"
MODES = {"listen": "监听", "whisper": "耳语", "barge": "强插"}
BARGE_QUESTION = "确定强插？通话双方都将听到您的声音"


async def on_a_call(pool: asyncpg.Pool, place_call: Any, agent_id: int) -> int:
    """An answered call on the agent's seat, as the call flow leaves it when a queue member answers."""
    call_id = await place_call("12345", CALLER, agent_id=agent_id, state="answered")
    async with pool.acquire() as conn, conn.transaction():
        assert await store.seat_on_call(conn, agent_id, call_id)
    return call_id


async def ready(pool: asyncpg.Pool, agent_id: int) -> None:
    await pool.execute(
        """INSERT INTO seats (user_id, state) VALUES ($1, 'ready')
           ON CONFLICT (user_id) DO UPDATE SET state = 'ready', current_call_id = NULL""", agent_id)


def monitor_posts(page: Any) -> list[tuple[str, Any]]:
    """Every monitor request the page sends: (path, body)."""
    return requests_sent(page, "POST", "/monitor")


async def click_and_answer(page: Any, button: Any) -> tuple[int, dict[str, Any], Any]:
    """Click a monitor button; the server's status and error body, and the request the page sent."""
    status, body, request = await seat_click(page, button, "POST", "/monitor")
    return status, body["error"], request


async def buttons_read(page: Any, user_id: int, texts: str) -> None:
    """Wait until the seat's monitor buttons read ``texts`` (each label, ``:off`` when disabled)."""
    await page.wait_for_function(
        """([id, texts]) => [...document.querySelectorAll(`#seat-table tr[data-user-id='${id}'] button[data-monitor]`)]
                             .map(b => b.textContent + (b.disabled ? ':off' : '')).join() === texts""",
        arg=[user_id, texts])


async def shown(page: Any, message: str) -> None:
    """The server's message is on screen as an error toast, word for word."""
    toast = page.locator(".toast.error", has_text=message).last
    await toast.wait_for()
    assert await toast.inner_text() == message


async def test_supervisor_monitors_a_seat_on_a_call(pages, pool, place_call, phone) -> None:
    talking = await pages.user("agent", display_name="王晓燕")
    no_phone = await pages.user("agent", display_name="孙丽")
    idle = await pages.user("agent", display_name="刘海涛")
    await phone(talking.id, "PJSIP/8001")
    await phone(idle.id, "PJSIP/8003")
    await on_a_call(pool, place_call, talking.id)
    await on_a_call(pool, place_call, no_phone.id)
    await ready(pool, idle.id)
    supervisor = await pages.user("supervisor")
    await phone(supervisor.id, "PJSIP/9001")  # the supervisor's own seat phone: the PBX is what is missing

    page = await pages.sign_in(supervisor, expect="supervisor")
    posts = monitor_posts(page)
    await row(page, talking.id).locator("button[data-monitor]").first.wait_for()
    headers = await page.locator("#seat-table tr").first.locator("th").all_inner_texts()
    assert headers[-1] == "监控"

    # on a call with a phone: the three buttons, usable
    buttons = row(page, talking.id).locator("button[data-monitor]")
    assert await buttons.evaluate_all("bs => bs.map(b => [b.dataset.monitor, b.textContent, b.disabled])") == [
        [mode, name, False] for mode, name in MODES.items()]
    # on a call without a phone: the same buttons, disabled, saying why
    buttons = row(page, no_phone.id).locator("button[data-monitor]")
    assert await buttons.evaluate_all("bs => bs.map(b => [b.dataset.monitor, b.disabled, b.title])") == [
        [mode, True, "该座席未配置电话"] for mode in MODES]
    # not on a call: an empty cell
    assert await row(page, idle.id).locator("button[data-monitor]").count() == 0  # (强制小休 / 强制签出 are in 管理)
    assert await row(page, idle.id).locator("td.monitor").inner_text() == ""
    await pages.shot(page, "supervisor-monitor")

    # 监听: the mode is posted with the CSRF token, and the server's answer is shown. The
    # answer comes once the supervisor's phone was picked up: held here (the phone rings),
    # the page says so, the clicked button reads 呼叫中 and no other monitoring can start
    ring = asyncio.Event()

    async def ringing(route: Any) -> None:
        await ring.wait()
        await route.continue_()

    await page.route("**/monitor", ringing)
    listen = row(page, talking.id).locator("button[data-monitor=listen]")
    async with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/monitor")) as got:
        await listen.click()
        await page.locator(".toast", has_text="正在呼叫您的座席电话，请接听以开始监听 王晓燕 的通话").wait_for()
        await buttons_read(page, talking.id, "监听（呼叫中）:off,耳语:off,强插:off")
        ring.set()
    response = await got.value
    status, error, request = response.status, (await response.json())["error"], response.request
    await page.unroute("**/monitor", ringing)
    assert request.url.endswith(f"/api/v1/seats/{talking.id}/monitor")
    assert request.post_data_json == {"mode": "listen"}
    assert request.headers.get("x-csrf-token")
    assert (status, error["code"]) == (503, "pbx_unavailable")  # no [calls] ami_host in these tests
    assert error["message"]
    await shown(page, error["message"])
    # the ringing is over: the buttons are back
    await buttons_read(page, talking.id, "监听,耳语,强插")

    # 强插 asks first; dismissed, nothing is sent (the 耳语 after it is the next request)
    questions: list[str] = []
    answer_next_dialog(page, questions, accept=False)
    await row(page, talking.id).locator("button[data-monitor=barge]").click()
    assert questions == [BARGE_QUESTION]
    status, error, request = await click_and_answer(page, row(page, talking.id).locator("button[data-monitor=whisper]"))
    assert request.post_data_json == {"mode": "whisper"}
    assert (status, error["code"]) == (503, "pbx_unavailable")
    assert [body["mode"] for _, body in posts] == ["listen", "whisper"]

    # accepted, it is sent
    answer_next_dialog(page, questions, accept=True)
    status, error, request = await click_and_answer(page, row(page, talking.id).locator("button[data-monitor=barge]"))
    assert questions == [BARGE_QUESTION, BARGE_QUESTION]
    assert request.post_data_json == {"mode": "barge"}
    assert (status, error["code"]) == (503, "pbx_unavailable")
    assert posts == [(f"api/v1/seats/{talking.id}/monitor", {"mode": m}) for m in ("listen", "whisper", "barge")]

    # a disabled button sends nothing (the browser does not click it)
    assert await row(page, no_phone.id).locator("button[data-monitor=listen]").is_disabled()
    assert len(posts) == 3


async def test_a_supervisor_without_a_phone_is_told_to_ask_the_admin(pages, pool, place_call, phone) -> None:
    talking = await pages.user("agent", display_name="王晓燕")
    await phone(talking.id, "PJSIP/8001")
    await on_a_call(pool, place_call, talking.id)
    supervisor = await pages.user("supervisor")  # no seat phone

    page = await pages.sign_in(supervisor, expect="supervisor")
    listen = row(page, talking.id).locator("button[data-monitor=listen]")
    status, error, request = await click_and_answer(page, listen)
    assert request.post_data_json == {"mode": "listen"}
    assert (status, error["code"]) == (409, "no_phone")
    assert "管理员" in error["message"]
    await shown(page, error["message"])


async def test_an_agent_may_not_monitor(pages, pool, place_call, phone) -> None:
    talking = await pages.user("agent", display_name="王晓燕")
    await phone(talking.id, "PJSIP/8001")
    await on_a_call(pool, place_call, talking.id)
    other = await pages.user("agent", display_name="孙丽")
    await phone(other.id, "PJSIP/8002")

    page = await pages.sign_in(other, expect="agent")
    refused = await page.evaluate("""async (id) => {
        const token = (await (await fetch('/api/v1/auth/me')).json()).csrf_token;
        const r = await fetch(`/api/v1/seats/${id}/monitor`, {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token}, body: JSON.stringify({mode: 'listen'})});
        return [r.status, (await r.json()).error.code];
    }""", talking.id)
    assert refused == [403, "forbidden"]


async def test_admin_gives_a_supervisor_a_seat_phone(pages, pool) -> None:
    agent = await pages.user("agent", display_name="王晓燕")
    supervisor = await pages.user("supervisor", display_name="赵班长")
    admin = await pages.user("admin")

    page = await pages.sign_in(admin, expect="admin")
    seat = page.locator(f"#phone-table tr[data-seat='{supervisor.username}']")
    await seat.wait_for()
    assert await seat.locator("td.roles").inner_text() == "班长"
    assert await seat.locator("td.skills").inner_text() == "—"  # skills route calls to agents, not supervisors
    assert await seat.locator("select").count() == 0
    agent_seat = page.locator(f"#phone-table tr[data-seat='{agent.username}']")
    assert await agent_seat.locator("td.roles").inner_text() == "话务员"
    assert await agent_seat.locator("td.skills select").count() == 1

    await seat.locator("input[aria-label='座席电话']").fill("PJSIP/9001")
    async with page.expect_response(lambda r: r.request.method == "PUT"
                                    and r.url.endswith(f"/api/v1/seats/{supervisor.id}/phone")) as got:
        await seat.locator("button:has-text('保存')").click()
    response = await got.value
    assert response.status == 200
    assert response.request.post_data_json == {"interface": "PJSIP/9001", "skills": []}
    await page.locator(".toast", has_text="座席电话已保存").first.wait_for()
    stored = await pool.fetchrow("SELECT interface, skills FROM seats WHERE user_id = $1", supervisor.id)
    assert (stored["interface"], list(stored["skills"])) == ("PJSIP/9001", [])
    # the panel is redrawn from the server: the phone is there
    await page.locator(f"#phone-table tr[data-seat='{supervisor.username}'] input[value='PJSIP/9001']").wait_for()


async def test_a_supervisor_hangs_up_a_call_with_a_reason(pages, pool, place_call, phone) -> None:
    """强拆 beside the monitor buttons: it asks why, a dismissed or empty answer sends
    nothing, the reason is posted to the seat's current call and the server's answer is
    shown (no PBX in these tests: pbx_unavailable, nothing audited)."""
    talking = await pages.user("agent", display_name="王晓燕")
    await phone(talking.id, "PJSIP/8001")
    call_id = await on_a_call(pool, place_call, talking.id)
    await pool.execute("UPDATE calls SET channel = 'PJSIP/trunk-00000007' WHERE id = $1", call_id)
    supervisor = await pages.user("supervisor")
    page = await pages.sign_in(supervisor, expect="supervisor")
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/hangup") else None)
    button = row(page, talking.id).locator("button[data-hangup]")
    await button.wait_for()
    assert await button.get_attribute("data-hangup") == str(call_id)

    questions: list[str] = []

    async def answer(text: str | None) -> Any:
        async def handle(dialog: Any) -> None:
            questions.append(dialog.message)
            await (dialog.dismiss() if text is None else dialog.accept(text))
        return handle

    page.once("dialog", await answer(None))
    await button.click()
    page.once("dialog", await answer("   "))
    await button.click()
    assert len(questions) == 2 and "王晓燕" in questions[0] and "原因" in questions[0]
    page.once("dialog", await answer(" 骚扰电话 "))
    async with page.expect_response(lambda r: r.url.endswith(f"/api/v1/calls/{call_id}/hangup")) as got:
        await button.click()
    response = await got.value
    error = (await response.json())["error"]
    assert (response.status, error["code"]) == (503, "pbx_unavailable")
    await shown(page, error["message"])
    assert sent == [{"reason": "骚扰电话"}]
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'call.hung_up_by_supervisor'") == 0
