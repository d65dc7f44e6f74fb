"""The assessment in a real browser: a unit's liaison files an appeal from its console;
the supervisor sees the month's ranking drawn with ECharts and tabulated with the
hand-computed scores of tests/month_support.py, approves the appeal from the
page, and the ranking moves."""

from __future__ import annotations

from typing import Any

import pytest
from month_support import seed_march
from tickets_support import ASSIST, LEAD, OTHER, Cast

pytestmark = pytest.mark.browser


async def test_supervisor_ranks_units_and_approves_an_appeal(pages, reference, pool) -> None:  # noqa: ANN001
    cast = Cast(agent=await pages.user("agent"), dispatcher=await pages.user("dispatcher"),
                supervisor=await pages.user("supervisor"), admin=await pages.user("admin"),
                liaison=await pages.user("liaison", unit_code=LEAD),
                assist_liaison=await pages.user("liaison", unit_code=ASSIST),
                other_liaison=await pages.user("liaison", unit_code=OTHER),
                sub_liaison=await pages.user("liaison", unit_code=ASSIST))  # not used by the month
    async with pool.acquire() as conn:
        tickets = await seed_march(conn, cast)
    number = await pool.fetchval("SELECT number FROM tickets WHERE id = $1", tickets["b2"])

    # the unit's liaison appeals from its console, with the reason in 说明
    lp: Any = await pages.sign_in(cast.other_liaison, expect="liaison")
    await lp.get_by_role("button", name="全部", exact=True).click()
    await lp.locator(f"tr.ticket-row[data-id='{tickets['b2']}']").click()
    await lp.wait_for_selector(f"#ticket-detail h2:has-text('{number}')")
    await lp.click("#d-appeal")
    await lp.wait_for_selector(".toast:has-text('请在“说明”中填写申诉理由')")
    await lp.fill("#d-text", "市民诉求超出法定职责")
    await lp.click("#d-appeal")
    await lp.wait_for_selector(f".toast:has-text('工单 {number} 的考核申诉已提交')")
    assert await pool.fetchval("SELECT reason FROM assessment_appeals WHERE ticket_id = $1 AND status = 'pending'",
                               tickets["b2"]) == "市民诉求超出法定职责"

    page: Any = await pages.sign_in(cast.supervisor, expect="supervisor")
    await page.wait_for_selector("#rank-month")
    await page.fill("#rank-month", "2026-03")
    await page.click("#rank-run")
    rows = page.locator("#ranking-rows tr")
    await page.wait_for_selector("#ranking-rows td:has-text('综合行政执法局')")
    assert await rows.nth(1).inner_text() == "1\t公安局\t100.0%\t50.0%\t50.0%\t55\t0"
    assert await rows.nth(2).inner_text() == "2\t综合行政执法局（城管）\t50.0%\t33.3%\t66.7%\t50\t0"
    assert await page.get_attribute("#ranking-chart", "data-rendered") == "2"
    assert await page.locator("#ranking-chart canvas").count() == 1

    appeal = page.locator("#appeal-table tr", has_text=number)
    await appeal.wait_for()
    page.once("dialog", lambda dialog: dialog.accept("经核实属实"))
    await appeal.locator("button[data-decision=approve]").click()
    await page.wait_for_selector(f".toast:has-text('工单 {number} 的申诉已同意')")
    await page.wait_for_selector("#ranking-rows td:has-text('100')")
    assert (await rows.nth(1).inner_text()).startswith("1\t公安局\t100.0%\t100.0%\t100.0%\t100\t1")
    assert await pool.fetchval("SELECT count(*) FROM assessment_exemptions WHERE ticket_id = $1", tickets["b2"]) == 1
    await pages.shot(page, "supervisor-ranking")
