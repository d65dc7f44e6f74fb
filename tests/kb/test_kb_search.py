"""Segmentation, synonyms, filters and validity, hostile queries."""

from __future__ import annotations

import datetime as dt

from hotline.kb.engine import KnowledgeBase, SearchRequest, Visibility
from hotline.kb.text import fold, query_terms, segment

TODAY = dt.date(2026, 6, 1)


def ids(result: dict) -> list[str]:
    return [item["id"] for item in result["items"]]


async def test_segmentation_finds_gongjijin_inside_zhufang_gongjijin_tiqu(kb: KnowledgeBase) -> None:
    words = [w for w, _, _ in segment("住房公积金提取")]
    assert "公积金" in words and "提取" in words
    result = await kb.search(SearchRequest(text="公积金", today=TODAY))
    assert "kb-t-001" in ids(result) and "kb-t-002" in ids(result)
    top = result["items"][0]
    assert "<mark>" in top["highlight"] and "公积金" in top["snippet"]


async def test_synonyms_find_the_long_form(kb: KnowledgeBase) -> None:
    # 社保 → 社会保险, 医保 → 医疗保险, 噪音 → 噪声
    assert ids(await kb.search(SearchRequest(text="社保怎么转移", today=TODAY)))[0] == "kb-t-003"
    assert ids(await kb.search(SearchRequest(text="医保报销", today=TODAY)))[0] == "kb-t-004"
    assert ids(await kb.search(SearchRequest(text="噪音", today=TODAY)))[0] == "kb-t-005"
