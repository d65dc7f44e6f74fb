"""The colloquial layer and the ranking (issue 14) through the engine on PostgreSQL:
the relevance set's held-out part with the acceptance thresholds, the relevance floor,
homophone typos, one-character prefixes, stop words, two-topic diversity, and lexicon
entries edited from the console taking effect on a second node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import wait_for

from hotline.config import PROJECT_ROOT
from hotline.kb.engine import NOTHING_FOUND, KnowledgeBase, SearchRequest, close_kb, get_kb
from hotline.kb.importer import import_path
from hotline.runtime import Runtime

HERE = Path(__file__).parent
SEED = PROJECT_ROOT / "knowledge_base"
#: the acceptance of issue 14: recall@5 over the whole set and over the paraphrase-only
#: utterances of the part kept out of tuning
RECALL5_ALL = 0.95
RECALL5_HELD_OUT_PARAPHRASE = 0.85


@pytest.fixture
async def seed_kb(runtime: Runtime) -> AsyncIterator[KnowledgeBase]:
    report = await import_path(runtime.pool, SEED)
    assert report.written and not report.problems, [str(p) for p in report.problems]
    engine = await get_kb(runtime)
    try:
        yield engine
    finally:
        await close_kb(runtime)


def ids(result: dict[str, Any]) -> list[str]:
    return [item["id"] for item in result["items"]]


async def top(kb: KnowledgeBase, text: str, n: int = 5) -> list[str]:
    return ids(await kb.search(SearchRequest(text=text, per_page=n)))[:n]


async def test_relevance_set_meets_the_thresholds_on_the_held_out_part(seed_kb: KnowledgeBase, runtime) -> None:
    covered = {r["n"] for r in await runtime.pool.fetch("SELECT DISTINCT unnest(hotlines) AS n FROM kb_articles")}
    assert not {line.number for line in runtime.registry} - covered, "every line has articles"
    cases = yaml.safe_load((HERE / "relevance.yaml").read_text(encoding="utf-8"))
    assert len(cases) >= 400
    lines = {c["line"] for c in cases}
    assert len(lines) == 33, "every line of the registry has utterances"
    assert sum(c["paraphrase"] for c in cases) >= len(cases) / 3
    held = [c for c in cases if c["part"] == "held-out"]
    assert len(held) >= 100
    misses: dict[str, list[str]] = {"all": [], "held": [], "held_para": []}
    for case in cases:
        found = await top(seed_kb, case["question"])
        ok = set(case["expected"]) <= set(found) if case.get("both") else bool(set(found) & set(case["expected"]))
        if not ok:
            line = f"{case['question']} → {found} (expected {case['expected']})"
            misses["all"].append(line)
            if case["part"] == "held-out":
                misses["held"].append(line)
                if case["paraphrase"]:
                    misses["held_para"].append(line)
    recall_all = 1 - len(misses["all"]) / len(cases)
    held_para = [c for c in held if c["paraphrase"]]
    recall_held_para = 1 - len(misses["held_para"]) / len(held_para)
    print(f"\nrecall@5 all {recall_all:.3f}, held-out {1 - len(misses['held']) / len(held):.3f}, "
          f"held-out paraphrase-only {recall_held_para:.3f}; misses:\n  " + "\n  ".join(misses["all"]))
    assert recall_all >= RECALL5_ALL, misses["all"]
    assert recall_held_para >= RECALL5_HELD_OUT_PARAPHRASE, misses["held_para"]


async def test_nonsense_gets_nothing_relevant_with_suggestions(seed_kb: KnowledgeBase, api_as) -> None:
    for text in yaml.safe_load((HERE / "nonsense.yaml").read_text(encoding="utf-8")):
        result = await seed_kb.search(SearchRequest(text=text))
        assert result["items"] == [], (text, ids(result))
        assert result["notice"] in (NOTHING_FOUND, "没有可检索的词（只有标点或常用虚词），请换个说法"), text
        assert "hint" in result and isinstance(result["suggestions"], list)
    # the floor refuses matches on stray words (不, 存在) but keeps real questions
    result = await seed_kb.search(SearchRequest(text="不存在的东西"))
    assert result["items"] == [] and result["notice"] == NOTHING_FOUND
    assert (await top(seed_kb, "公积金怎么取"))[0].startswith("kb-12329")
    agent = await api_as("agent")
    resp = await agent.get("/api/v1/kb/search", params={"q": "今天天气怎么样"})
    body = await resp.json()
    assert resp.status == 200 and body["items"] == [] and body["notice"] == NOTHING_FOUND


async def test_typos_prefixes_fillers_and_two_topics(seed_kb: KnowledgeBase) -> None:
    # homophone typos (pinyin key): 公鸡金 is 公积金, 社宝卡 is 社保卡
    assert (await top(seed_kb, "公鸡金能不能付房租"))[0] == "kb-12329-001"
    assert "kb-12333-007" in await top(seed_kb, "社宝卡丢了怎么办", 3)
    # ... but a real word that sounds like another is left alone (不懂 is not 不动)
    assert await top(seed_kb, "说了你也不懂") == []
    # a one-character word finds the longer words that start with it
    assert seed_kb.ranker is not None
    plan = seed_kb.ranker.plan("退", seed_kb.index.vocabulary())
    assert {"退款", "退费", "退货", "退保"} & {w.word for w in plan.words}
    # single-character fillers are stop words: 个 no longer pulls 个税 to the top
    assert not any(i.startswith("kb-12366") for i in await top(seed_kb, "买了个热水器坏了"))
    assert (await top(seed_kb, "买了个热水器坏了", 3))[0] == "kb-12315-005"
    # a two-topic utterance gets both topics in the top 5
    both = await top(seed_kb, "辞职了公积金能取出来吗，失业金能领吗")
    assert {"kb-12329-005", "kb-12333-004"} <= set(both)
    # colloquial phrases with a gap: 房东…不退 means the tenancy deposit article
    assert (await top(seed_kb, "房东到现在都不退我押金", 3))[0] == "kb-12345-010"


async def test_lexicon_entries_are_reviewed_and_reach_every_node(api_as, kb: KnowledgeBase,
                                                                 second_node: Runtime) -> None:
    node_b = KnowledgeBase(second_node)
    await node_b.open()
    try:
        liaison = await api_as("liaison", unit_code="housing-fund")
        supervisor = await api_as("supervisor")
        agent = await api_as("agent")

        async def propose(entry: dict[str, Any]) -> int:
            resp = await liaison.post("/api/v1/kb/lexicon", json=entry)
            assert resp.status == 201, await resp.text()
            entry_id = (await resp.json())["entry"]["id"]
            resp = await liaison.post(f"/api/v1/kb/lexicon/{entry_id}/transition", json={"action": "submit"})
            assert resp.status == 200, await resp.text()
            return int(entry_id)

        async def publish(entry_id: int) -> None:
            resp = await agent.post(f"/api/v1/kb/lexicon/{entry_id}/transition", json={"action": "publish"})
            assert resp.status == 403
            resp = await supervisor.post(f"/api/v1/kb/lexicon/{entry_id}/transition", json={"action": "publish"})
            assert resp.status == 200, await resp.text()

        async def b_finds(text: str, article_id: str) -> bool:
            return article_id in ids(await node_b.search(SearchRequest(text=text)))

        # a colloquial phrase (many-to-one): proposed, not effective until published
        phrase = await propose({"kind": "phrase", "terms": ["钱袋子*拿出来"], "means": ["公积金", "提取"]})
        assert not await b_finds("单位那个钱袋子能拿出来吗", "kb-t-001")
        await publish(phrase)
        await wait_for(lambda: b_finds("单位那个钱袋子能拿出来吗", "kb-t-001"))

        # a synonym group
        group = await propose({"kind": "synonym", "terms": ["吵闹", "噪声"]})
        await publish(group)
        await wait_for(lambda: b_finds("吵闹", "kb-t-005"))

        # a stop word: the word alone no longer searches anything
        assert await b_finds("施工", "kb-t-005")
        stop = await propose({"kind": "stopword", "terms": ["施工"]})
        await publish(stop)

        async def stop_word_applies() -> bool:
            return (await node_b.search(SearchRequest(text="施工")))["items"] == []
        await wait_for(stop_word_applies)

        # a dictionary word: node B re-cuts its index with it (a rebuild) and finds by it
        rebuilds = node_b.stats.rebuilds
        assert node_b.segmenter is not None
        assert "贷款条件" not in node_b.segmenter.index_tokens("住房公积金贷款条件")
        word = await propose({"kind": "word", "terms": ["贷款条件"]})
        await publish(word)

        async def rebuilt_with_word() -> bool:
            assert node_b.segmenter is not None
            return node_b.stats.rebuilds > rebuilds and "贷款条件" in node_b.segmenter.index_tokens("住房公积金贷款条件")
        await wait_for(rebuilt_with_word)
        assert node_b.stats.last_rebuild_reason == "the dictionary changed"
        assert node_b.ranker is not None and node_b.ranker.plan("贷款条件").words[0].word == "贷款条件"
        assert await b_finds("贷款条件", "kb-t-002")

        # withdrawing the phrase takes it away again
        resp = await supervisor.post(f"/api/v1/kb/lexicon/{phrase}/transition", json={"action": "archive"})
        assert resp.status == 200

        async def phrase_gone() -> bool:
            return not await b_finds("单位那个钱袋子能拿出来吗", "kb-t-001")
        await wait_for(phrase_gone)

        # bad input names the field
        resp = await liaison.post("/api/v1/kb/lexicon", json={"kind": "phrase", "terms": ["说法"], "means": []})
        assert resp.status == 400 and (await resp.json())["error"]["field"] == "means"
        resp = await liaison.post("/api/v1/kb/lexicon", json={"kind": "slang", "terms": ["x"]})
        assert resp.status == 400 and (await resp.json())["error"]["field"] == "kind"
        resp = await agent.post("/api/v1/kb/lexicon", json={"kind": "stopword", "terms": ["的"]})
        assert resp.status == 403
        listing = await (await supervisor.get("/api/v1/kb/lexicon")).json()
        assert {e["state"] for e in listing["items"]} == {"published", "archived"} and listing["can_review"]
    finally:
        await node_b.close()


async def test_publish_is_searchable_on_another_node_while_an_older_transaction_runs(
        kb: KnowledgeBase, second_node: Runtime, pool) -> None:
    """No global lock: a long transaction elsewhere holds the change log's safe horizon
    back, yet a publish is searchable on another node at once; the node's cursor stays
    before the gap and catches up (without skipping) when the transaction ends."""
    from hotline.auth import create_user
    from hotline.kb import articles

    node_b = KnowledgeBase(second_node)
    await node_b.open()
    admin = await create_user(pool, "kb-admin", "correct-horse-battery", ["admin"])
    async with pool.acquire() as blocker:
        tx = blocker.transaction()
        await tx.start()
        await blocker.fetchval("SELECT pg_current_xact_id()")  # holds an xid: the horizon stops here
        try:
            before = node_b.cursor
            row = await articles.create_article(pool, admin, {
                "title": "海岛渡轮老年人优惠", "category": "交通/轮渡", "unit_code": "transport",
                "material_type": "日常咨询", "hotlines": ["12328"], "keywords": ["渡轮优惠"],
                "body": "七十周岁以上老人乘坐本地渡轮凭证件享受优惠。"})
            await articles.transition(pool, admin, row["id"], "submit")
            await articles.transition(pool, admin, row["id"], "publish")

            async def searchable() -> bool:
                return row["id"] in ids(await node_b.search(SearchRequest(text="渡轮优惠")))
            await wait_for(searchable)
            assert node_b.cursor == before          # not past the running transaction
        finally:
            await tx.rollback()
        await node_b.sync()
        assert node_b.cursor == await node_b.latest() and node_b.cursor > before
    await node_b.close()
