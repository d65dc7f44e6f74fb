"""The derived index follows PostgreSQL: notifications, catch-up from the change
cursor after missed notifications or downtime, rebuild when the index cannot be
trusted, serialised writers, and two nodes converging on one database."""

from __future__ import annotations

import asyncio
import shutil

from support import wait_for

from hotline.auth import create_user
from hotline.kb import articles
from hotline.kb.engine import KnowledgeBase, SearchRequest, Visibility
from hotline.runtime import Runtime

ALL = Visibility(all_states=True)


async def found(kb: KnowledgeBase, text: str) -> list[str]:
    return [i["id"] for i in (await kb.search(SearchRequest(text=text, visibility=ALL)))["items"]]


async def publish_new(pool, user, title: str, body: str) -> str:
    row = await articles.create_article(pool, user, {
        "title": title, "category": "测试/同步", "unit_code": "hrss", "material_type": "日常咨询",
        "hotlines": ["12333"], "keywords": [], "body": body})
    await articles.transition(pool, user, row["id"], "submit")
    await articles.transition(pool, user, row["id"], "publish")
    return row["id"]


async def test_two_nodes_converge_through_notifications(kb: KnowledgeBase, second_node: Runtime, pool) -> None:
    node_b = KnowledgeBase(second_node)
    await node_b.open()
    try:
        assert node_b.index.path != kb.index.path
        assert set(await found(node_b, "公积金")) == set(await found(kb, "公积金"))
        admin = await create_user(pool, "kb-admin", "correct-horse-battery", ["admin"])
        article_id = await publish_new(pool, admin, "灵活就业人员参加养老保险", "灵活就业人员可以以个人身份参加企业职工基本养老保险。")
        # neither node was told directly: both follow the notification
        await wait_for(lambda: _has(node_b, "灵活就业", article_id))
        await wait_for(lambda: _has(kb, "灵活就业", article_id))
        await articles.transition(pool, admin, article_id, "archive")
        await wait_for(lambda: _state(node_b, article_id, "archived"))
        await wait_for(lambda: _at_latest(kb))
        await wait_for(lambda: _at_latest(node_b))
    finally:
        await node_b.close()


async def _at_latest(kb: KnowledgeBase) -> bool:
    return kb.cursor == await kb.latest()


async def _has(kb: KnowledgeBase, text: str, article_id: str) -> bool:
    return article_id in await found(kb, text)


async def _state(kb: KnowledgeBase, article_id: str, state: str) -> bool:
    items = (await kb.search(SearchRequest(text="", visibility=ALL, per_page=50)))["items"]
    return any(i["id"] == article_id and i["state"] == state for i in items)


async def test_catch_up_after_missed_notifications_and_downtime(kb: KnowledgeBase, second_node: Runtime,
                                                                pool) -> None:
    admin = await create_user(pool, "kb-admin", "correct-horse-battery", ["admin"])
    deaf = KnowledgeBase(second_node)
    await deaf.open(listen=False)           # its LISTEN connection is gone: it hears nothing
    first = await publish_new(pool, admin, "工伤认定申请时限", "用人单位应当自事故伤害发生之日起30日内提出工伤认定申请。")
    await wait_for(lambda: _has(kb, "工伤认定", first))
    assert first not in await found(deaf, "工伤认定")
    assert await deaf.sync() >= 1            # the poll / next change / restart catches up from the cursor
    assert first in await found(deaf, "工伤认定")
    await deaf.close()

    # the node is down while more changes happen; at start it catches up (no rebuild)
    second = await publish_new(pool, admin, "失业保险金申领条件", "失业前用人单位和本人已经缴纳失业保险费满一年。")
    await articles.update_article(pool, admin, "kb-t-003", {"keywords": ["社保转移", "养老保险转移"]})
    restarted = KnowledgeBase(second_node)
    await restarted.open(listen=False)
    try:
        assert restarted.stats.rebuilds == 0
        assert second in await found(restarted, "失业保险金")
        assert "kb-t-003" in await found(restarted, "养老保险转移")
        assert restarted.cursor == await restarted.latest()
    finally:
        await restarted.close()


async def test_rebuild_when_the_index_cannot_be_trusted(kb: KnowledgeBase, second_node: Runtime, pool) -> None:
    node = KnowledgeBase(second_node)
    await node.open(listen=False)
    path = node.index.path
    await node.close()
    shutil.rmtree(path)                      # lost
    node = KnowledgeBase(second_node)
    await node.open(listen=False)
    assert node.stats.rebuilds == 1 and "kb-t-001" in await found(node, "公积金")
    await node.close()
    # the database was restored from an older backup: the index is ahead of the log
    await pool.execute("DELETE FROM change_log")
    node = KnowledgeBase(second_node)
    await node.open(listen=False)
    assert node.stats.rebuilds == 1 and "ahead" in node.stats.last_rebuild_reason
    await node.close()
    # an article appeared in the database without a change-log row: the check sees the difference
    await pool.execute("INSERT INTO kb_articles (id, title, category, unit_code, material_type, body, state) "
                       "VALUES ('kb-x', '手工插入', '测试', 'hrss', '日常咨询', '正文', 'published')")
    node = KnowledgeBase(second_node)
    await node.open(listen=False)
    assert node.stats.rebuilds == 1 and "kb-x" in await found(node, "手工插入")
    await node.close()


async def test_concurrent_writers_on_one_index_do_not_corrupt_it(kb: KnowledgeBase, runtime: Runtime,
                                                                 pool) -> None:
    admin = await create_user(pool, "kb-admin", "correct-horse-battery", ["admin"])
    # a second engine on the SAME directory (like `hotline kb reindex` next to a running node)
    same_dir = KnowledgeBase(runtime)
    await same_dir.open(listen=False)
    try:
        async def edit(i: int) -> None:
            await articles.update_article(pool, admin, "kb-t-002", {"keywords": [f"并发{i}"]})
            await articles.update_article(pool, admin, "kb-t-005", {"keywords": [f"并发{i}"]})

        await asyncio.gather(*(edit(i) for i in range(8)), same_dir.rebuild("concurrent"), kb.sync(),
                             same_dir.sync(), kb.sync())
        await kb.sync()
        await same_dir.sync()
        db_ids = {r["id"] for r in await pool.fetch("SELECT id FROM kb_articles")}
        assert await asyncio.to_thread(kb.index.ids) == db_ids
        kw = await pool.fetchval("SELECT keywords[1] FROM kb_articles WHERE id = 'kb-t-005'")
        assert "kb-t-005" in await found(kb, kw)
        # no global lock serialised the writers; both engines end at the change log's head
        assert kb.cursor == same_dir.cursor == await kb.latest()
    finally:
        await same_dir.close()


async def test_synonym_edits_reach_every_node_without_reindex(api_as, kb: KnowledgeBase,
                                                              second_node: Runtime) -> None:
    node_b = KnowledgeBase(second_node)
    await node_b.open()
    try:
        assert "kb-t-004" not in await found(node_b, "看病钱")
        supervisor = await api_as("supervisor")
        resp = await supervisor.put("/api/v1/kb/synonyms", json={"groups": [["看病钱", "医疗费用"]]})
        assert resp.status == 200, await resp.text()
        await wait_for(lambda: _has(node_b, "看病钱", "kb-t-004"))
        agent = await api_as("agent")
        assert (await agent.put("/api/v1/kb/synonyms", json={"groups": []})).status == 403
        resp = await supervisor.put("/api/v1/kb/synonyms", json={"groups": [["只有一个"]]})
        assert resp.status == 400
    finally:
        await node_b.close()
