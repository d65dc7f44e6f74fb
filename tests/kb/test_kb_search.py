"""Segmentation, synonyms, filters and validity, hostile queries."""

from __future__ import annotations

import datetime as dt

from hotline.kb.engine import KnowledgeBase, SearchRequest, Visibility
from hotline.kb.text import fold

TODAY = dt.date(2026, 6, 1)


def ids(result: dict) -> list[str]:
    return [item["id"] for item in result["items"]]


async def test_segmentation_finds_gongjijin_inside_zhufang_gongjijin_tiqu(kb: KnowledgeBase) -> None:
    words = kb.segmenter.index_tokens("住房公积金提取")
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


async def test_filters_and_validity_hide_what_they_should(kb: KnowledgeBase) -> None:
    # the 2023 notice ended its validity: agents never see it, reviewers do
    assert "kb-t-006" not in ids(await kb.search(SearchRequest(text="缴存基数", today=TODAY)))
    everything = await kb.search(SearchRequest(text="缴存基数", today=TODAY, visibility=Visibility(all_states=True)))
    assert ids(everything)[0] == "kb-t-006" and everything["items"][0]["state"] == "expired"
    # line, unit, category prefix, material type
    assert set(ids(await kb.search(SearchRequest(text="公积金", hotline="12333", today=TODAY)))) == set()
    assert set(ids(await kb.search(SearchRequest(text="", hotline="12329", today=TODAY)))) == {"kb-t-001", "kb-t-002"}
    assert ids(await kb.search(SearchRequest(text="公积金", category="住房公积金/贷款", today=TODAY))) == ["kb-t-002"]
    assert ids(await kb.search(SearchRequest(text="", unit="hrss", today=TODAY))) == ["kb-t-003"]
    assert ids(await kb.search(SearchRequest(text="", material_type="热点问答", today=TODAY))) == ["kb-t-005"]
    # not yet valid: an article whose validity starts tomorrow is hidden today
    assert "kb-t-001" not in ids(await kb.search(SearchRequest(text="公积金", today=dt.date(2023, 6, 1))))


async def test_pagination(kb: KnowledgeBase) -> None:
    first = await kb.search(SearchRequest(text="", per_page=2, page=1, today=TODAY))
    second = await kb.search(SearchRequest(text="", per_page=2, page=2, today=TODAY))
    third = await kb.search(SearchRequest(text="", per_page=2, page=3, today=TODAY))
    assert first["total"] == 5
    assert len(first["items"]) == 2 and len(second["items"]) == 2 and len(third["items"]) == 1
    assert not set(ids(first)) & set(ids(second))


async def test_full_width_and_mixed_ascii(kb: KnowledgeBase) -> None:
    assert fold("ＥＴＣ　１２３４５") == "etc 12345"
    assert ids(await kb.search(SearchRequest(text="拨打１２３４５反映", today=TODAY)))[0] == "kb-t-005"
    assert "kb-t-002" in ids(await kb.search(SearchRequest(text="满６个月 公积金ＤＫ贷款", today=TODAY)))


async def test_hostile_and_odd_queries_get_clear_answers(kb: KnowledgeBase) -> None:
    for text in ['"公积金', "公积金*", "(公积金 AND 提取", "公积金 OR NOT", "title:公积金", "公积金^3~2",
                 "\\", "[]{}", "提取 -贷款", "*", "<script>alert(1)</script> 公积金"]:
        result = await kb.search(SearchRequest(text=text, today=TODAY))
        assert isinstance(result["items"], list), text
    assert "kb-t-001" in ids(await kb.search(SearchRequest(text="(公积金 AND 提取", today=TODAY)))
    only_punctuation = await kb.search(SearchRequest(text="？？！！", today=TODAY))
    assert only_punctuation["items"] == [] and "notice" in only_punctuation
    one = await kb.search(SearchRequest(text="税", today=TODAY))
    assert "notice" in one
    empty = await kb.search(SearchRequest(text="", today=TODAY))
    assert empty["total"] == 5 and "notice" not in empty
    snippet_html = (await kb.search(SearchRequest(text="<script> 公积金", today=TODAY)))["items"][0]["highlight"]
    assert "<script>" not in snippet_html
    assert kb.segmenter.query_words("怎么办理公积金提取？", kb.lexicon.stop_words) == ["办理", "公积金", "提取"]


async def test_search_api_for_agents_and_bad_input(api_as, kb: KnowledgeBase) -> None:
    agent = await api_as("agent")
    resp = await agent.get("/api/v1/kb/search", params={"q": "公积金 提取", "per_page": "3"})
    assert resp.status == 200
    body = await resp.json()
    assert body["items"][0]["id"] == "kb-t-001" and "<mark>" in body["items"][0]["highlight"]
    resp = await agent.post("/api/v1/kb/search", json={"q": "公积金" * 3_334})  # 10,002 characters
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "kb_query_too_long" and error["field"] == "q"
    resp = await agent.get("/api/v1/kb/search", params={"q": "公" * 600})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "kb_query_too_long"
    resp = await agent.post("/api/v1/kb/search", json={"q": "公积金提取", "hotline": "12329", "per_page": 2})
    assert resp.status == 200 and (await resp.json())["items"][0]["id"] == "kb-t-001"
    for params in ({"page": "0"}, {"per_page": "1000"}, {"page": "x"}, {"state": "draft"},
                   {"material_type": "小说"}):
        resp = await agent.get("/api/v1/kb/search", params=params)
        assert resp.status == 400, params
    resp = await agent.get("/api/v1/kb/search", params={"q": 'AND OR NOT "*( 公积金'})
    assert resp.status == 200
    resp = await agent.get("/api/v1/kb/suggest", params={"hotline": "12329", "text": "我想把公积金取出来付房租"})
    items = (await resp.json())["items"]
    assert items[0]["id"] == "kb-t-001" and set(items[0]) >= {"id", "title", "score", "snippet"}
