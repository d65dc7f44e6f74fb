"""The console in a real browser (Debian chromium, headless, Playwright)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


async def test_agent_screen_pop(pages, place_call) -> None:
    agent = await pages.user("agent")
    page = await pages.sign_in(agent, expect="agent")
    await page.click("button[data-state=ready]")
    await page.wait_for_selector("#seat-state:has-text('空闲')")
    await place_call("12333", "13812345678", agent_id=agent.id)
    await page.wait_for_selector("#pop-line:has-text('12333')")
    assert "138****5678" in await page.inner_text("#caller-number")
    await pages.shot(page, "agent")
