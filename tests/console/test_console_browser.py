"""The console in a real browser (Debian chromium, headless, Playwright): every
role signs in, a FastAGI call pops on the agent's screen, tickets are created,
dispatched, signed and replied, the wallboard moves, forged requests are refused.
Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import wait_for

pytestmark = pytest.mark.browser

CALLER = "13812345678"


async def test_sign_in_each_role_lands_on_its_console(pages) -> None:
    expected = {"agent": "agent", "expert": "expert", "liaison": "liaison", "dispatcher": "liaison",
                "supervisor": "supervisor", "admin": "admin"}
    async def sign_in(role: str, page_name: str) -> Any:
        extra = {"unit_code": "hrss"} if role == "liaison" else {"hotline_number": "12333"} if role == "expert" else {}
        user = await pages.user(role, **extra)
        page = await pages.sign_in(user, expect=page_name)
        assert user.display_name in await page.inner_text("#who")
        await page.close()
        return user

    users = await asyncio.gather(*(sign_in(role, name) for role, name in expected.items()))
    user = users[-1]
    # a wrong password is refused in Chinese
    page = await pages.new_page()
    await page.goto(f"{pages.base}/console/login")
    await page.fill("#username", user.username)
    await page.fill("#password", "wrong-password-123")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#error:has-text('用户名或密码错误')")
    await pages.shot(page, "login")


async def test_fastagi_call_pops_and_agent_dispatches_a_ticket(pages, agi, phone, reference, knowledge, pool,
                                                               place_call) -> None:
    agent = await pages.user("agent")
    await phone(agent.id, "PJSIP/8001")
    page = await pages.sign_in(agent, expect="agent")
    await page.click("button[data-state=ready]")
    await page.wait_for_selector("#seat-state:has-text('空闲')")

    # the caller rang last week about unpaid wages; that ticket is still open
    from hotline.tickets.intake import NewTicket, create_ticket

    earlier = await place_call("12345", CALLER, state="completed")
    async with pool.acquire() as conn:
        await create_ticket(conn, NewTicket(hotline_number="12345", subject="反映工资被拖欠要求协调",
                                            caller_number=CALLER, kind="help", call_ids=[earlier]))

    # Asterisk: the caller dials 12333, the queue hands the call to the agent's phone
    await agi.call("12333", CALLER, interface="PJSIP/8001")
    await page.wait_for_selector("#pop-line:has-text('12333 人力资源和社会保障服务热线')")
    await page.wait_for_selector("#open-tickets td:has-text('反映工资被拖欠要求协调')")
    await page.wait_for_selector("#call-history td:has-text('12345政务服务便民热线')")
    assert await page.inner_text("#pop-mode") == "双号并行"
    assert await page.inner_text("#caller-number") == "138****5678"
    await page.wait_for_selector("#seat-state:has-text('通话中')")
    assert await page.locator("#suggestions .kb-article").count() > 0

    # show number: audited
    await page.click("#reveal")
    await page.wait_for_selector(f"#caller-number:has-text('{CALLER}')")
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'view_caller_number' AND user_id = $1",
                               agent.id) == 1

    # knowledge search with highlights
    await page.fill("#kb-q", "养老保险关系转移")
    await page.click("#kb-panel button[type=submit]")
    await page.wait_for_selector("#kb-results .kb-article mark")

    # the ticket: five elements, category, urgency, dispatch to the unit
    await page.fill("#t-name", "张先生")
    await page.fill("#t-where", "东管庙弄")
    await page.fill("#t-subject", "反映用人单位未按时缴纳社会保险")
    await page.fill("#t-facts", "公司已连续三个月未缴纳社会保险，要求核查处理。")
    await page.select_option("#t-kind", "complaint")
    category = "0502"  # 人力社保与医保/社会保险: the dispatch catalogue proposes its unit
    await page.select_option("#t-category", category)
    assert await page.input_value("#t-unit") == "hrss"
    await page.click("#t-dispatch")  # no region yet: the page asks for one
    await page.wait_for_selector("#t-result:has-text('请选择属地')")
    await page.select_option("#t-region", "330902001")  # 定海区 / 解放街道, from the configured tree
    await page.wait_for_function("document.querySelector('#t-unit').value === 'hrss'")  # the server's suggestion
    await page.click("#t-dispatch")
    await page.wait_for_selector("#t-result:has-text('已派单')")
    ticket = await pool.fetchrow(
        "SELECT id, state, lead_unit_code, caller_number, category_code, region_code FROM tickets "
        "WHERE lead_unit_code = 'hrss'")
    assert (ticket["state"], ticket["lead_unit_code"], ticket["caller_number"]) == ("dispatched", "hrss", CALLER)
    assert (ticket["category_code"], ticket["region_code"]) == (category, "330902001")
    await pages.shot(page, "agent")

    # the unit's liaison signs and replies with the basis
    liaison = await pages.user("liaison", unit_code="hrss")
    lp = await pages.sign_in(liaison, expect="liaison")
    row = lp.locator(f"tr.ticket-row[data-id='{ticket['id']}']")
    await row.wait_for()
    await row.click()
    await lp.wait_for_selector("#d-subject:has-text('未按时缴纳社会保险')")
    # the colour is the server's verdict (sla_state), whatever the hour the test runs at
    assert await row.get_attribute("class") == "dl-ontime ticket-row"  # green: well before the deadline
    assert await lp.get_attribute("#d-deadline", "data-sla") == "normal"
    await lp.wait_for_selector("#d-where:has-text('解放街道')")
    await lp.click("#d-sign")
    await lp.wait_for_selector("#d-result:has-text('已签收')")
    # the unit asks for more time; the centre sees the reason and the days asked before approving
    await lp.fill("#d-text", "需联系用人单位财务核对缴费记录")
    await lp.fill("#d-days", "3")
    await lp.click("#d-extend")
    await lp.wait_for_selector("#d-result:has-text('延期申请已提交')")
    dispatcher = await pages.user("dispatcher")
    dp = await pages.sign_in(dispatcher, expect="liaison")
    await dp.locator(f"tr.ticket-row[data-id='{ticket['id']}']").click()
    await dp.wait_for_selector("#d-review:has-text('申请延期 3 个工作日')")
    assert "需联系用人单位财务核对缴费记录" in await dp.inner_text("#d-review")
    await dp.fill("#d-days", "3")
    await dp.click("#d-act-approve_extension")
    await dp.wait_for_selector("#d-result:has-text('已批准延期')")
    # the unit's page follows by push (what the unit typed is kept across the refresh)
    await lp.wait_for_selector("#d-history:has-text('延期批准')")
    await lp.fill("#d-text", "经核查，该公司已于本月补缴社会保险费，并承诺按月足额缴纳。")
    await lp.fill("#d-basis", "《社会保险法》第六十三条；现场核查记录")
    await lp.click("#d-reply")
    await lp.wait_for_selector("#d-result:has-text('已回复')")
    assert await pool.fetchval("SELECT state FROM tickets WHERE id = $1", ticket["id"]) == "reply_review"
    await pages.shot(lp, "liaison")

    # the centre's dispatcher reviews the reply (it sees the reply and its basis), then records the callback
    await dp.reload()
    await dp.wait_for_selector("body[data-ready='1']")
    await dp.locator(f"tr.ticket-row[data-id='{ticket['id']}']").click()
    await dp.wait_for_selector("#d-sign[disabled]")  # a unit's action: not the centre's
    await dp.wait_for_selector("#d-review:has-text('《社会保险法》第六十三条')")
    await dp.click("#d-act-approve_reply")
    # the action's own refresh (which starts the form clean) is done before choosing the satisfaction
    await dp.wait_for_selector("#d-result:has-text('已回复审核通过')")
    await dp.wait_for_selector("#d-act-callback_close")
    await dp.select_option("#d-satisfaction", "4")
    await dp.select_option("#d-resolution", "partly")  # 回访 records the resolution too (解决率)
    await dp.click("#d-act-callback_close")
    await dp.wait_for_selector("#d-result:has-text('已回访办结')")
    row = await pool.fetchrow("SELECT state, satisfaction, resolution FROM tickets WHERE id = $1", ticket["id"])
    assert (row["state"], row["satisfaction"], row["resolution"]) == ("closed", 4, "partly")
    # the history reads in Chinese: no action codes, no "null" anywhere on the page
    await dp.reload()
    await dp.wait_for_selector("body[data-ready='1']")
    await dp.get_by_role("button", name="全部", exact=True).click()
    await dp.locator(f"tr.ticket-row[data-id='{ticket['id']}']").click()
    await dp.wait_for_selector("#d-history:has-text('回访办结')")
    page_text = await dp.inner_text("body")
    assert "callback_close" not in page_text and "request_extension" not in page_text
    assert "null" not in page_text and "undefined" not in page_text
    assert "满意度：满意；解决情况：部分解决" in await dp.inner_text("#d-history")


async def test_supervisor_sees_the_wallboard_move(pages, agi, reference, knowledge, runtime) -> None:
    import random

    from hotline.demo.service import seed_day

    agents = [(await pages.user("agent", display_name=name)).id for name in ("刘海涛", "孙丽", "周文斌")]
    await seed_day(runtime, agents, rng=random.Random(12345))  # a day of traffic
    supervisor = await pages.user("supervisor")
    page = await pages.sign_in(supervisor, expect="supervisor")
    # refusals by reason (the server's month): a panel fed by /api/v1/tickets/refusals
    await page.wait_for_selector("#refusals[data-loaded='1'] #refusal-totals:has-text('不予受理')")
    offered = int(await page.inner_text("#kpi-offered .v"))
    assert offered > 0
    await page.wait_for_selector("#kpi-waiting .v:text-is('0')")
    await agi.call("12345", "13900001111")  # nobody answers: the call waits in the queue
    await page.wait_for_selector("#kpi-waiting .v:text-is('1')")
    await page.wait_for_selector("#queue-table td:has-text('12345')")
    await page.wait_for_selector(f"#kpi-offered .v:text-is('{offered + 1}')")
    assert pages.paths.count("/api/v1/console/wallboard") == 1  # pushed over the WebSocket, never polled
    # the SLA report with its ECharts chart (per line: the call above is on 12345)
    await page.click("#r-run")
    await page.wait_for_selector("#reports[data-loaded='1']")
    assert int(await page.get_attribute("#report-chart", "data-rendered")) > 1  # one bar group per line
    assert await page.locator("#report-chart canvas").count() == 1
    assert "12345" in await page.inner_text("#report-rows")
    assert (await page.get_attribute("#r-xlsx", "href")).endswith("format=xlsx")
    await page.select_option("#r-kind", "tickets")
    await page.wait_for_selector("#reports[data-loaded='1'] #report-table")
    await page.select_option("#r-kind", "calls")
    await page.wait_for_selector("#reports[data-loaded='1'] #report-rows")

    # an overdue ticket: the supervisor presses the unit (督办)
    overdue = await runtime.pool.fetchval(
        "SELECT ticket_id FROM sla_clocks WHERE stopped_at IS NULL ORDER BY ticket_id LIMIT 1")
    assert overdue is not None
    await runtime.pool.execute("UPDATE sla_clocks SET deadline = now() - interval '3 hours' WHERE ticket_id = $1",
                               overdue)
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    number = await runtime.pool.fetchval("SELECT number FROM tickets WHERE id = $1", overdue)
    row = page.locator("#risk-table tr.dl-overdue", has_text=f"{number} ")  # shown by its number
    await row.wait_for()
    page.once("dialog", lambda dialog: dialog.accept("请于今日内联系市民并答复"))
    await row.locator("button[data-action=supervise]").click()
    await page.wait_for_selector(f".toast:has-text('工单 {number} 已督办')")
    assert await runtime.pool.fetchval(
        "SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND action = 'supervise'", overdue) == 1
    await pages.shot(page, "supervisor")


async def test_forged_and_wrong_role_requests_are_refused(pages) -> None:
    agent = await pages.user("agent")
    page = await pages.sign_in(agent, expect="agent")
    forged = await page.evaluate("""async () => {
        const r = await fetch('/api/v1/console/seat', {method: 'PUT', headers: {'Content-Type': 'application/json'},
                                                       body: JSON.stringify({state: 'ready'})});
        return [r.status, (await r.json()).error.code];
    }""")
    assert forged == [403, "csrf_failed"]
    wrong_role = await page.evaluate("async () => (await fetch('/api/v1/users')).status")
    assert wrong_role == 403
    await page.goto(f"{pages.base}/console/admin")  # the page sends the agent home
    await page.wait_for_url("**/console/agent")


async def test_admin_creates_a_liaison(pages) -> None:
    admin = await pages.user("admin")
    page = await pages.sign_in(admin, expect="admin")
    await page.fill("#n-username", "liaison-hrss")
    await page.fill("#n-name", "人社局联络员")
    await page.fill("#n-password", "a-long-password-1")
    await page.check("#new-roles input[value=liaison]")
    await page.select_option("#n-unit", "hrss")
    await page.click("#new-user button[type=submit]")
    await page.wait_for_selector("tr[data-user='liaison-hrss']")
    await page.wait_for_selector("#audit-table td:has-text('创建用户')")
    await pages.shot(page, "admin")


async def test_transfer_to_an_expert_who_sees_the_ticket(pages, agi, phone, reference, pool) -> None:
    expert = await pages.user("expert", hotline_number="12333")
    await phone(expert.id, "PJSIP/8101")
    ep = await pages.sign_in(expert, expect="expert")
    await ep.click("button[data-state=ready]")
    await ep.wait_for_selector("#seat-state:has-text('空闲')")

    agent = await pages.user("agent")
    await phone(agent.id, "PJSIP/8001")
    page = await pages.sign_in(agent, expect="agent")
    await page.click("button[data-state=ready]")
    await page.wait_for_selector("#seat-state:has-text('空闲')")
    await agi.call("12333", CALLER, interface="PJSIP/8001")
    await page.wait_for_selector("#pop-line:has-text('12333')")
    await page.fill("#t-subject", "咨询灵活就业人员社保补缴政策")
    await page.fill("#t-facts", "市民2019年至2021年断缴，询问能否补缴以及补缴方式。")
    await page.click("#t-save")
    await page.wait_for_selector("#t-result:has-text('已受理')")
    await page.click("#transfer-expert")
    await page.wait_for_selector("#transfer-outcome:has-text('正在接通专家')")

    # the expert's console: the transferred call with the ticket so far
    await ep.wait_for_selector("#x-ticket:has-text('咨询灵活就业人员社保补缴政策')")
    assert "断缴" in await ep.inner_text("#x-ticket")
    await ep.wait_for_selector("#seat-state:has-text('通话中')")
    await ep.click("#x-reveal")  # the expert the call went to may see the number (audited)
    await ep.wait_for_selector(f"#x-caller:has-text('{CALLER}')")
    await ep.click("#x-accept")
    await ep.wait_for_selector("#transfer-detail h2 .tag:has-text('已接听')")
    await ep.fill("#x-answer", "2019年后断缴的可按规定补缴，携带身份证到社保经办窗口办理。")
    await ep.click("#x-close")
    await ep.wait_for_selector("#transfer-detail .tag:has-text('已办结')")
    row = await pool.fetchrow("SELECT state, close_kind, answer FROM tickets")
    assert (row["state"], row["close_kind"]) == ("closed", "direct") and "补缴" in row["answer"]
    await pages.shot(ep, "expert")


async def test_agent_closes_directly_with_a_knowledge_article(pages, agi, phone, reference, knowledge, pool) -> None:
    agent = await pages.user("agent")
    await phone(agent.id, "PJSIP/8002")
    page = await pages.sign_in(agent, expect="agent")
    await page.click("button[data-state=ready]")
    await page.wait_for_selector("#seat-state:has-text('空闲')")
    call = await agi.call("12333", "13911112222", interface="PJSIP/8002")
    await page.wait_for_selector("#pop-line:has-text('12333')")
    await page.fill("#kb-q", "失业保险金 申领")
    await page.click("#kb-panel button[type=submit]")
    first = page.locator("#kb-results .kb-article").first
    await first.wait_for()
    article_id = await first.get_attribute("data-id")
    await first.locator("a.kb-title").click()  # read it whole, flag it as outdated from the call
    await page.wait_for_selector("#kb-dialog[open]")
    await page.fill("#kb-flag-reason", "申领渠道已调整")
    await page.click("#kb-flag")
    await page.wait_for_selector(".toast:has-text('已反馈给知识管理员')")
    assert await pool.fetchval("SELECT count(*) FROM kb_flags WHERE article_id = $1", article_id) == 1
    await first.locator("button").click()
    await page.wait_for_selector(f"#t-article:has-text('{article_id}')")
    await page.fill("#t-subject", "咨询失业保险金申领条件")
    await page.click("#t-close")
    await page.wait_for_selector("#t-result:has-text('已直接办结')")
    row = await pool.fetchrow("SELECT id, state, close_kind, answer FROM tickets")
    assert (row["state"], row["close_kind"]) == ("closed", "direct") and row["answer"]
    detail = await pool.fetchval("SELECT detail FROM ticket_events WHERE ticket_id = $1 AND action = 'close_direct'",
                                 row["id"])
    assert detail["kb_article_id"] == article_id
    # the caller hangs up: the seat goes to after-call work by itself, then ready again by hand
    await agi.hangup(call.uid)
    await page.wait_for_selector("#call-state:has-text('已结束')")
    await page.wait_for_selector("#seat-state:has-text('话后处理')")
    await page.click("button[data-state=ready]")
    await page.wait_for_selector("#seat-state:has-text('空闲')")


async def test_agent_sends_an_emergency_to_another_channel_with_a_reason(pages, reference, pool) -> None:
    """转其他渠道 with a configured reason code (counted by reason in the refusal report)."""
    agent = await pages.user("agent")
    page = await pages.sign_in(agent, expect="agent")
    await page.fill("#t-subject", "楼道起火冒烟")
    await page.click("#t-transfer")
    await page.wait_for_selector("#t-result:has-text('请选择原因')")
    assert await page.locator("#t-reason option[value=emergency_119]").count() == 1
    await page.select_option("#t-reason", "emergency_119")
    await page.fill("#t-answer", "已转119消防处置，请市民注意安全撤离")
    await page.click("#t-transfer")
    await page.wait_for_selector("#t-result:has-text('已转其他渠道')")
    row = await pool.fetchrow("SELECT state, close_kind, refusal_reason, answer FROM tickets")
    assert tuple(row) == ("closed", "transferred", "emergency_119", "已转119消防处置，请市民注意安全撤离")


async def test_agent_page_catches_up_after_a_lost_connection(pages, server, place_call) -> None:
    """A call that reached the seat while the push channel was down still pops:
    after reconnecting the page reloads the seat's current call."""
    from hotline.web.routes.console import HUB

    agent = await pages.user("agent")
    page = await pages.sign_in(agent, expect="agent")
    await page.wait_for_selector("#conn.on")
    hub = server.app[HUB]
    lost = [c for c in hub.clients if c.user.id == agent.id]
    for client in lost:
        hub.remove(client)  # the node forgets the socket: pushes no longer reach it
    call_id = await place_call("12329", "13600001234", agent_id=agent.id)  # nobody hears this push
    async def on_the_seat() -> bool:
        return await pages.pool.fetchval("SELECT current_call_id FROM seats WHERE user_id = $1", agent.id) == call_id

    await wait_for(on_the_seat, what="the call on the agent's seat")
    assert await page.locator("#pop-line").count() == 0
    for client in lost:
        await client.ws.close(code=1012, message=b"restart")  # the page reconnects and catches up
    await page.wait_for_selector("#pop-line:has-text('12329 住房公积金服务热线')")
    await page.wait_for_selector("#conn.on")
