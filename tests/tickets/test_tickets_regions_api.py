"""Over HTTP: the region tree and its admin API, region x category rules and the
suggestion, a district's dispatcher scoped to its subtree, refusal reasons and the
refusal report, the supervision order in the ticket view."""

from datetime import datetime, timedelta
from typing import Any

import asyncpg


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


BODY = {"hotline_number": "12345", "subject": "小区路灯不亮", "facts": "路灯坏了一周", "location": "环南街道某小区",
        "caller_name": "钱七", "caller_number": "13800002222", "kind": "help"}


async def test_regions_rules_and_suggestion(api_as: Any, seeded: Any) -> None:
    agent = await api_as("agent")
    admin = await api_as("admin")
    tree = (await _json(await agent.get("/api/v1/regions"), 200))["items"]
    city = tree[0]
    assert (city["code"], city["name"]) == ("330900", "舟山市")
    assert [d["code"] for d in city["children"]] == ["330902", "330903", "330921", "330922"]
    dinghai = city["children"][0]
    assert dinghai["units"] == ["dinghai"] and any(s["code"] == "330902003" for s in dinghai["children"])
    # only supervisors and admins edit the tree; bad codes are named
    await _json(await agent.post("/api/v1/regions", json={"code": "330902099", "name": "试验街道", "level": "street",
                                                          "parent_code": "330902"}), 403)
    bad = await _json(await admin.post("/api/v1/regions", json={"code": "3309021", "name": "x", "level": "street",
                                                                "parent_code": "330902"}), 400)
    assert bad["error"]["field"] == "code"
    await _json(await admin.post("/api/v1/regions", json={"code": "330902099", "name": "试验街道", "level": "street",
                                                          "parent_code": "330902"}), 201)
    await _json(await admin.patch("/api/v1/regions/330902099", json={"active": False}), 200)
    # units are bound to regions through the units API (a street's new office answers for it)
    await _json(await admin.post("/api/v1/units", json={"code": "dinghai-changguo", "name": "定海区昌国街道",
                                                        "kind": "street", "parent_code": "dinghai"}), 201)
    bound = await _json(await admin.patch("/api/v1/units/dinghai-changguo", json={"region_code": "330902002"}), 200)
    assert bound["unit"]["region_code"] == "330902002"
    got = await _json(await agent.get("/api/v1/dispatch-suggestion?region=330902002"), 200)
    assert got["unit"]["code"] == "dinghai-changguo"
    bad = await _json(await admin.patch("/api/v1/units/dinghai-changguo", json={"region_code": "330902777"}), 400)
    assert bad["error"]["field"] == "region_code"
    # refusals for console users: Chinese, a stable code, the field and the value named
    bad = await _json(await admin.patch("/api/v1/regions/330902", json={"colour": "red"}), 400)
    assert (bad["error"]["code"], bad["error"]["field"]) == ("unknown_field", "colour")
    assert "不能设置字段 colour" in bad["error"]["message"]
    bad = await _json(await admin.patch("/api/v1/regions/330902", json={"parent_code": "999999"}), 400)
    assert bad["error"]["code"] == "unknown_region" and "999999" in bad["error"]["message"]
    # the suggestion for region x category, then a rule that changes it
    got = await _json(await agent.get("/api/v1/dispatch-suggestion?region=330902003"), 200)
    assert got["unit"]["code"] == "dinghai-huannan"
    await _json(await admin.put("/api/v1/dispatch-rules", json={"region_code": "330902003", "category_code": None,
                                                                "unit_code": "dinghai"}), 200)
    got = await _json(await agent.get("/api/v1/dispatch-suggestion?region=330902003"), 200)
    assert got["unit"]["code"] == "dinghai"
    rules = (await _json(await agent.get("/api/v1/dispatch-rules"), 200))["items"]
    assert [(r["region_code"], r["unit_code"]) for r in rules] == [("330902003", "dinghai")]
    # a ticket filed under the region is dispatched to the suggested unit when none is named
    created = await _json(await agent.post("/api/v1/tickets", json={**BODY, "region_code": "330902003",
                                                                    "dispatch": {}}), 201)
    assert created["ticket"]["lead_unit_code"] == "dinghai" and created["ticket"]["region_name"] == "环南街道"
    assert created["ticket"]["sla_state"] == "normal"


async def test_a_districts_dispatcher_sees_its_subtree(api_as: Any, pool: asyncpg.Pool, seeded: Any) -> None:
    centre = await api_as("dispatcher")
    district = await api_as("dispatcher", unit_code="dinghai")
    street = await api_as("liaison", unit_code="dinghai-huannan")
    other = await api_as("dispatcher", unit_code="putuo")
    tid = (await _json(await centre.post("/api/v1/tickets", json={**BODY, "dispatch": {"unit_code": "dinghai"}}),
                       201))["ticket"]["id"]
    view = await _json(await district.post(f"/api/v1/tickets/{tid}/actions/sign", json={}), 200)
    assert "subdispatch" in view["ticket"]["allowed_actions"] and "redispatch" not in view["ticket"]["allowed_actions"]
    await _json(await district.post(f"/api/v1/tickets/{tid}/actions/subdispatch",
                                    json={"unit_code": "dinghai-huannan"}), 200)
    await _json(await street.post(f"/api/v1/tickets/{tid}/actions/sign", json={}), 200)
    for api in (centre, district, street):
        ids = [t["id"] for t in (await _json(await api.get("/api/v1/tickets"), 200))["items"]]
        assert tid in ids
    assert tid not in [t["id"] for t in (await _json(await other.get("/api/v1/tickets"), 200))["items"]]
    await _json(await other.get(f"/api/v1/tickets/{tid}"), 404)
    # the district's dispatcher cannot search by caller number (a unit's view is masked)
    await _json(await district.get("/api/v1/tickets?caller=138****2222"), 403)
    # a supervision order shows in the ticket view with its reply deadline
    sup = await api_as("supervisor")
    await _json(await sup.post(f"/api/v1/tickets/{tid}/actions/supervise", json={"instruction": "请尽快修复"}), 200)
    view = (await _json(await street.get(f"/api/v1/tickets/{tid}"), 200))["ticket"]
    assert view["supervision_orders"][0]["unit_code"] == "dinghai-huannan"
    assert view["supervision_orders"][0]["reply_due_at"]
    history = (await _json(await street.get(f"/api/v1/tickets/{tid}/history"), 200))["items"]
    assert [h["action_name"] for h in history][-4:] == ["签收", "下派", "签收", "督办"]
    assert history[-1]["summary"] == "督办意见：请尽快修复"


async def test_refusal_reasons_and_report(api_as: Any, seeded: Any) -> None:
    agent = await api_as("agent")
    sup = await api_as("supervisor")
    reasons = (await _json(await agent.get("/api/v1/tickets/refusal-reasons"), 200))["items"]
    assert {"litigation", "petition", "emergency_110", "emergency_119", "emergency_120", "emergency_122"} <= {
        r["code"] for r in reasons}
    t = (await _json(await agent.post("/api/v1/tickets", json=BODY), 201))["ticket"]
    bad = await _json(await agent.post(f"/api/v1/tickets/{t['id']}/actions/refuse",
                                       json={"reason_code": "weather", "answer": "x"}), 400)
    assert bad["error"]["field"] == "reason_code"
    done = await _json(await agent.post(f"/api/v1/tickets/{t['id']}/actions/refuse",
                                        json={"reason_code": "arbitration", "answer": "请申请劳动仲裁"}), 200)
    assert done["ticket"]["close_kind_name"] == "不予受理" and done["ticket"]["refusal_reason"] == "arbitration"
    await _json(await agent.get("/api/v1/tickets/refusals"), 403)  # the report is for the centre's leads
    closed = datetime.fromisoformat(done["ticket"]["closed_at"])
    window = {"from": (closed - timedelta(days=1)).isoformat(), "to": (closed + timedelta(days=1)).isoformat()}
    report = await _json(await sup.get("/api/v1/tickets/refusals", params=window), 200)
    assert report["totals"]["refused"] == 1
    assert {(i["reason_code"], i["count"]) for i in report["items"] if i["count"]} == {("arbitration", 1)}
