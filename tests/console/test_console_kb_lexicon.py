"""The supervisor's 知识库词库 panel in a real browser: propose a colloquial phrase,
publish it, and an agent's search finds the article by the citizen's words."""

from __future__ import annotations

from typing import Any

from hotline.kb.engine import SearchRequest


async def test_supervisor_publishes_a_colloquial_phrase(pages, knowledge: Any, runtime) -> None:
    from hotline.kb.engine import get_kb

    kb = await get_kb(runtime)
    words = "我的老本断档了咋整"
    before = [i["id"] for i in (await kb.search(SearchRequest(text=words)))["items"]]
    supervisor = await pages.user("supervisor")
    page = await pages.sign_in(supervisor, expect="supervisor")
    await page.wait_for_selector("#kb-lexicon #lex-form")
    await page.select_option("#lex-kind", "phrase")
    await page.fill("#lex-terms", "老本*断档")
    await page.fill("#lex-means", "社保断缴, 社保补缴")
    await page.click("#lex-form button[type=submit]")
    row = page.locator("#kb-lexicon-table tr", has_text="老本*断档")
    await row.locator("td:has-text('待审核')").wait_for()
    await row.locator("button.lex-publish").click()
    await page.locator("#kb-lexicon-table tr", has_text="老本*断档").locator("td:has-text('已发布')").wait_for()
    await kb.sync()
    after = [i["id"] for i in (await kb.search(SearchRequest(text=words)))["items"]]
    assert before == [] and after[:1] == ["kb-12333-003"], (before, after)
    await pages.shot(page, "supervisor-kb-lexicon")
