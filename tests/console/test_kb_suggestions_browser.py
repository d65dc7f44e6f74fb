"""The agent page when the knowledge base finds nothing relevant (issue 14), in real
headless chromium: "没有找到相关知识" with the line's most-read articles, categories to
browse and what the caller may have meant (a word typed in pinyin), each usable with
one click while the caller waits."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


async def test_agent_sees_suggestions_under_nothing_found(pages, knowledge, pool) -> None:
    most_read = await pool.fetchval("SELECT id FROM kb_articles WHERE state = 'published' ORDER BY id DESC LIMIT 1")
    await pool.execute("UPDATE kb_articles SET views = 99 WHERE id = $1", most_read)
    agent = await pages.user("agent")
    page = await pages.sign_in(agent, expect="agent")

    await page.fill("#kb-q", "今天天气怎么样")
    await page.click("#kb-panel button[type=submit]")
    await page.wait_for_selector("#kb-nothing:has-text('没有找到相关知识')")
    await pages.shot(page, "agent-kb-nothing-found")
    popular = page.locator("#kb-popular .kb-article")
    assert await popular.first.get_attribute("data-id") == most_read
    # a popular article is quoted into the ticket form like any result
    await popular.first.locator("button").click()
    await page.wait_for_selector(f"#t-article:has-text('{most_read}')")

    # browsing a category lists its articles
    chip = page.locator("#kb-categories button").first
    category = (await chip.inner_text()).split("（")[0]
    await chip.click()
    await page.locator("#kb-results .kb-article").first.wait_for()
    assert await page.locator("#kb-nothing").count() == 0
    shown = await page.locator("#kb-results .kb-article").evaluate_all("els => els.map(e => e.dataset.id)")
    in_category = {r["id"] for r in await pool.fetch(
        "SELECT id FROM kb_articles WHERE split_part(category, '/', 1) = $1", category)}
    assert shown and set(shown) <= in_category

    # a word typed in pinyin: offered in characters, one click searches it
    await page.fill("#kb-q", "shebaoka")
    await page.click("#kb-panel button[type=submit]")
    await page.wait_for_selector("#kb-nothing")
    await page.click("#kb-alternatives button:has-text('社保卡')")
    await page.locator("#kb-results .kb-article").first.wait_for()
    assert await page.input_value("#kb-q") == "社保卡"
    titles = await page.locator("#kb-results .kb-title").all_inner_texts()
    assert any("社保卡" in t or "社会保障卡" in t for t in titles), titles
