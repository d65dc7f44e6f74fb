"""Nothing relevant found (issue 14): the answer says "没有找到相关知识" and carries what an
agent still on the call can use: what the caller may have meant (homophone typos,
words typed in pinyin), the line's most-read live articles and its categories."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline.kb.engine import NOTHING_FOUND, KnowledgeBase, SearchRequest

TODAY = dt.date(2026, 6, 1)


async def test_nonsense_offers_the_lines_most_read_articles_and_categories(kb: KnowledgeBase, runtime) -> None:
    result = await kb.search(SearchRequest(text="今天天气怎么样", hotline="12329", today=TODAY))
    assert result["items"] == [] and result["notice"] == NOTHING_FOUND
    # live articles of the line only (kb-t-006 ended in 2023; kb-t-003 is another line's)
    assert {a["id"] for a in result["popular"]} == {"kb-t-001", "kb-t-002"}
    assert result["categories"] == [{"category": "住房公积金", "count": 2}]
    assert all(a["title"] and a["snippet"] for a in result["popular"])
    # the most-read comes first
    await runtime.pool.execute("UPDATE kb_articles SET views = 40 WHERE id = 'kb-t-002'")
    result = await kb.search(SearchRequest(text="今天天气怎么样", hotline="12329", today=TODAY))
    assert [a["id"] for a in result["popular"]][0] == "kb-t-002"
    # without a line (or on 12345, which answers for every line): every line's
    result = await kb.search(SearchRequest(text="今天天气怎么样", hotline="12345", today=TODAY))
    assert {c["category"] for c in result["categories"]} == {"住房公积金", "人力社保", "医疗保障", "生态环境"}
    assert len(result["popular"]) == 5


async def test_words_typed_in_pinyin_are_offered_as_alternatives(kb: KnowledgeBase) -> None:
    result = await kb.search(SearchRequest(text="gongjijin", today=TODAY))
    assert result["items"] == [] and result["notice"] == NOTHING_FOUND
    assert result["alternatives"][0] == "公积金"
    # the alternative finds the articles
    found = await kb.search(SearchRequest(text=result["alternatives"][0], today=TODAY))
    assert {"kb-t-001", "kb-t-002"} <= {a["id"] for a in found["items"]}
    result = await kb.search(SearchRequest(text="yidi jiuyi zenme ban", today=TODAY))
    assert "异地" in result["alternatives"] or "异地就医" in result["alternatives"], result["alternatives"]
    # something relevant found: none of it
    result = await kb.search(SearchRequest(text="公积金提取", today=TODAY))
    assert result["items"] and not {"alternatives", "popular", "categories", "notice"} & set(result)


async def test_the_api_returns_the_suggestions_to_an_agent(kb: KnowledgeBase, api_as) -> None:
    agent = await api_as("agent")
    resp = await agent.get("/api/v1/kb/search", params={"q": "shebao zhuanyi", "hotline": "12333"})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    assert body["items"] == [] and body["notice"] == NOTHING_FOUND and body["hint"]
    assert "社保" in body["alternatives"]
    assert [a["id"] for a in body["popular"]] == ["kb-t-003"]
    assert body["categories"] == [{"category": "人力社保", "count": 1}]
