"""Co-building and the review workflow through the API: a liaison edits only its
unit's articles, publishing needs a reviewer, published articles change through a
reviewed revision, flags land with the owner unit, and the review-due list."""

from __future__ import annotations

from hotline.kb.engine import KnowledgeBase

ARTICLE = {
    "title": "公积金异地转移接续办理指南",
    "category": "住房公积金/转移",
    "unit_code": "housing-fund",
    "material_type": "办事指南",
    "hotlines": ["12329"],
    "keywords": ["公积金转移", "异地转移"],
    "body": "职工跨城市就业，可以通过全国住房公积金小程序申请异地转移接续。",
    "valid_from": "2024-01-01",
    "review_due": "2030-01-01",
}


async def agent_sees(api, text: str) -> list[str]:
    resp = await api.get("/api/v1/kb/search", params={"q": text})
    assert resp.status == 200
    return [i["id"] for i in (await resp.json())["items"]]


async def test_liaison_edits_only_its_own_units_articles(api_as, kb: KnowledgeBase) -> None:
    fund = await api_as("liaison", unit_code="housing-fund")
    other = await api_as("liaison", unit_code="hrss")
    agent = await api_as("agent")
    resp = await fund.post("/api/v1/kb/articles", json=ARTICLE)
    assert resp.status == 201, await resp.text()
    article = (await resp.json())["article"]
    assert article["state"] == "draft" and article["unit_code"] == "housing-fund"
    # another unit's liaison may not edit it, nor create for that unit, nor move it
    resp = await other.patch(f"/api/v1/kb/articles/{article['id']}", json={"body": "改了"})
    assert resp.status == 403
    resp = await other.post("/api/v1/kb/articles", json={**ARTICLE, "title": "别的标题"})
    assert resp.status == 403 and (await resp.json())["error"]["field"] == "unit_code"
    resp = await fund.patch(f"/api/v1/kb/articles/{article['id']}", json={"unit_code": "hrss"})
    assert resp.status == 403
    # the owner edits; a stale version is refused
    resp = await fund.patch(f"/api/v1/kb/articles/{article['id']}", json={"body": ARTICLE["body"] + "材料：身份证。",
                                                                         "version": 1})
    assert resp.status == 200 and (await resp.json())["article"]["version"] == 2
    resp = await fund.patch(f"/api/v1/kb/articles/{article['id']}", json={"body": "x", "version": 1})
    assert resp.status == 409
    # agents can neither edit nor see a draft
    assert (await agent.patch(f"/api/v1/kb/articles/{article['id']}", json={"body": "x"})).status == 403
    assert (await agent.get(f"/api/v1/kb/articles/{article['id']}")).status == 404
    assert article["id"] not in await agent_sees(agent, "公积金异地转移")
    # the liaison sees its own draft in search; the other unit's liaison does not
    assert article["id"] in await agent_sees(fund, "公积金异地转移")
    assert article["id"] not in await agent_sees(other, "公积金异地转移")


async def test_review_workflow_transitions(api_as, kb: KnowledgeBase) -> None:
    fund = await api_as("liaison", unit_code="housing-fund")
    supervisor = await api_as("supervisor")
    agent = await api_as("agent")
    article = (await (await fund.post("/api/v1/kb/articles", json=ARTICLE)).json())["article"]
    url = f"/api/v1/kb/articles/{article['id']}"

    async def act(api, action: str, status: int = 200) -> dict:
        resp = await api.post(f"{url}/transition", json={"action": action, "note": f"{action} note"})
        assert resp.status == status, (action, await resp.text())
        return await resp.json()

    await act(fund, "publish", 403)                 # a liaison is not a reviewer
    await act(supervisor, "publish", 409)           # draft → published is not a transition
    assert (await act(fund, "submit"))["article"]["state"] == "review"
    assert (await act(supervisor, "reject"))["article"]["state"] == "draft"
    await act(fund, "submit")
    assert (await act(supervisor, "publish"))["article"]["state"] == "published"
    assert article["id"] in await agent_sees(agent, "公积金异地转移")

    # editing a published article makes a revision; the live text stays until published
    resp = await fund.patch(url, json={"title": "住房公积金异地转移接续（新版）"})
    assert resp.status == 200
    body = (await resp.json())["article"]
    assert body["state"] == "published" and body["revision_state"] == "draft" and body["title"] == ARTICLE["title"]
    await act(fund, "submit")
    published = (await act(supervisor, "publish"))["article"]
    assert published["title"] == "住房公积金异地转移接续（新版）" and published["revision"] is None
    assert published["version"] == 2

    # expire hides from agents; restore goes back to draft; archive
    assert (await act(supervisor, "expire"))["article"]["state"] == "expired"
    assert article["id"] not in await agent_sees(agent, "公积金异地转移")
    assert (await act(fund, "restore"))["article"]["state"] == "draft"
    assert (await act(supervisor, "archive"))["article"]["state"] == "archived"
    await act(supervisor, "bogus", 400)

    history = (await (await fund.get(f"{url}/history")).json())["items"]
    actions = [h["action"] for h in history]
    assert actions == ["create", "submit", "reject", "submit", "publish", "revise", "revision_submit", "publish",
                       "expire", "restore", "archive"]
    assert all(h["actor_name"] for h in history)
    assert history[7]["changed_fields"] == ["title"]


async def test_named_unit_reviewer_and_validity_on_publish(api_as, kb: KnowledgeBase) -> None:
    admin = await api_as("admin")
    fund = await api_as("liaison", unit_code="housing-fund")
    keeper = await api_as("liaison", unit_code="housing-fund")
    resp = await admin.post("/api/v1/kb/reviewers", json={"user_id": keeper.user.id, "unit_code": "housing-fund"})
    assert resp.status == 201
    expired = {**ARTICLE, "title": "过期的通知", "valid_from": "2020-01-01", "valid_to": "2020-12-31"}
    article = (await (await fund.post("/api/v1/kb/articles", json=expired)).json())["article"]
    url = f"/api/v1/kb/articles/{article['id']}/transition"
    assert (await fund.post(url, json={"action": "submit"})).status == 200
    resp = await keeper.post(url, json={"action": "publish"})
    assert resp.status == 409 and (await resp.json())["error"]["field"] == "valid_to"
    assert (await fund.patch(f"/api/v1/kb/articles/{article['id']}", json={"valid_to": None})).status == 200
    assert (await keeper.post(url, json={"action": "publish"})).status == 200
    # the named reviewer of one unit reviews nothing else
    hrss = (await (await admin.post("/api/v1/kb/articles", json={**ARTICLE, "title": "社保卡挂失",
                                                                   "unit_code": "hrss"})).json())["article"]
    await admin.post(f"/api/v1/kb/articles/{hrss['id']}/transition", json={"action": "submit"})
    assert (await keeper.post(f"/api/v1/kb/articles/{hrss['id']}/transition",
                              json={"action": "publish"})).status == 403


async def test_flags_land_with_the_owner_unit_and_review_due(api_as, kb: KnowledgeBase, pool) -> None:
    agent = await api_as("agent")
    fund = await api_as("liaison", unit_code="housing-fund")
    hrss = await api_as("liaison", unit_code="hrss")
    resp = await agent.post("/api/v1/kb/articles/kb-t-001/flags", json={"reason": "提取额度已调整，条文过时"})
    assert resp.status == 201
    flag = (await resp.json())["flag"]
    assert flag["unit_code"] == "housing-fund" and flag["state"] == "open"
    assert (await agent.post("/api/v1/kb/articles/kb-t-001/flags", json={"reason": "  "})).status == 400
    assert (await agent.post("/api/v1/kb/articles/nope/flags", json={"reason": "x"})).status == 404
    fund_flags = (await (await fund.get("/api/v1/kb/flags")).json())["items"]
    assert [f["id"] for f in fund_flags] == [flag["id"]]
    assert (await (await hrss.get("/api/v1/kb/flags")).json())["items"] == []
    assert (await hrss.post(f"/api/v1/kb/flags/{flag['id']}/resolve", json={"resolution": "x"})).status == 403

    await pool.execute("UPDATE kb_articles SET review_due = current_date - 1 WHERE id = 'kb-t-002'")
    due = (await (await fund.get("/api/v1/kb/review-due", params={"days": "10"})).json())["units"]
    assert [u["unit_code"] for u in due] == ["housing-fund"]
    reasons = {i["id"]: i["reasons"] for i in due[0]["items"]}
    assert reasons["kb-t-001"] == ["flagged"] and reasons["kb-t-002"] == ["overdue_review"]
    assert "kb-t-006" in reasons  # validity ended
    assert (await hrss.get("/api/v1/kb/review-due", params={"unit": "housing-fund"})).status == 403

    resp = await fund.post(f"/api/v1/kb/flags/{flag['id']}/resolve", json={"resolution": "已更新"})
    assert resp.status == 200 and (await resp.json())["flag"]["state"] == "resolved"
    assert (await fund.post(f"/api/v1/kb/flags/{flag['id']}/resolve", json={})).status == 409


async def test_expiry_job_and_bad_input(api_as, kb: KnowledgeBase, runtime) -> None:
    from hotline.kb.jobs import expire_articles

    await runtime.pool.execute("UPDATE kb_articles SET valid_to = current_date - 1 WHERE id = 'kb-t-002'")
    assert await expire_articles(runtime) == ["kb-t-002"]
    assert await runtime.pool.fetchval("SELECT state FROM kb_articles WHERE id = 'kb-t-002'") == "expired"
    admin = await api_as("admin")
    resp = await admin.post("/api/v1/kb/articles", json={**ARTICLE, "title": "住房公积金提取办理指南"})
    assert resp.status == 409 and (await resp.json())["error"]["field"] == "title"
    resp = await admin.post("/api/v1/kb/articles", json={**ARTICLE, "title": "x" * 129, "material_type": "小说",
                                                         "valid_from": "2024-13-01"})
    assert resp.status == 400
    fields = {p["field"] for p in (await resp.json())["error"]["problems"]}
    assert fields == {"title", "material_type", "valid_from"}
    resp = await admin.post("/api/v1/kb/articles", data="not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
