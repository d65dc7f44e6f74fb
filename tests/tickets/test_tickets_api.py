"""The tickets API end to end: intake + dispatch, liaison visibility,
confidentiality and audited unmasked views, 409 bodies, catalogue, calendar."""

from datetime import datetime
from typing import Any

import asyncpg
from tickets_support import ASSIST, LEAD, OTHER

BODY = {"hotline_number": "12345", "subject": "夜间施工噪声", "facts": "工地23点后仍在施工",
        "location": "定海区解放西路", "caller_name": "赵六", "caller_number": "+86 138-0000-9999",
        "category_code": "0603", "kind": "complaint"}


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_intake_dispatch_and_liaison_visibility(api_as: Any, pool: asyncpg.Pool, seeded: Any) -> None:
    agent = await api_as("agent")
    lead = await api_as("liaison", unit_code=LEAD)
    assist = await api_as("liaison", unit_code=ASSIST)
    other = await api_as("liaison", unit_code=OTHER)
    created = await _json(await agent.post("/api/v1/tickets", json={
        **BODY, "confidential": True, "dispatch": {"unit_code": LEAD, "assist_units": [ASSIST]}}), 201)
    t = created["ticket"]
    assert t["state"] == "dispatched" and t["caller"]["number"] == "138****9999"
    assert {c["stage"] for c in t["clocks"]} == {"sign", "handle"}
    tid = t["id"]
    # each running clock says when it turns 临期: its 80 % mark in working time, as stored
    marks = {r["id"]: r["marks"][list(r["levels"]).index(80)]
             for r in await pool.fetch("SELECT id, levels, marks FROM sla_clocks WHERE ticket_id = $1", tid)}
    assert {c["id"]: datetime.fromisoformat(c["warn_at"]) for c in t["clocks"]} == marks
    # the lead and assisting units see it, with the caller withheld; another unit does not
    for api in (lead, assist):
        view = await _json(await api.get(f"/api/v1/tickets/{tid}"), 200)
        assert view["ticket"]["caller"] == {"name": "（保密）", "number": "（保密）", "contact_number": "（保密）",
                                            "masked": True, "withheld": True}
        assert [i["id"] for i in (await _json(await api.get("/api/v1/tickets"), 200))["items"]] == [tid]
    assert (await other.get(f"/api/v1/tickets/{tid}")).status == 404
    assert (await other.get(f"/api/v1/tickets/{tid}/history")).status == 404
    assert (await _json(await other.get("/api/v1/tickets"), 200))["items"] == []
    assert (await other.post(f"/api/v1/tickets/{tid}/actions/sign", json={})).status == 404
    assert (await lead.get(f"/api/v1/tickets/{tid}?reveal=contact")).status == 403
    assert (await lead.get("/api/v1/tickets?caller=13800009999")).status == 403
    # the centre may reveal the number; every reveal is audited
    revealed = await _json(await agent.get(f"/api/v1/tickets/{tid}?reveal=contact"), 200)
    assert revealed["ticket"]["caller"]["number"] == "13800009999"
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'ticket_contact_viewed' "
                               "AND object_id = $1 AND user_id = $2", str(tid), agent.user.id) == 1
    found = await _json(await agent.get("/api/v1/tickets?caller=138****9999"), 200)
    assert [i["id"] for i in found["items"]] == [tid]
    # the lead signs; an illegal action answers 409 with the state and the allowed actions
    await _json(await lead.post(f"/api/v1/tickets/{tid}/actions/sign", json={"note": "已签收"}), 200)
    err = (await _json(await lead.post(f"/api/v1/tickets/{tid}/actions/sign", json={}), 409))["error"]
    assert err["code"] == "illegal_transition" and err["current_state"] == "handling"
    assert "reply" in err["allowed_actions"] and "sign" not in err["allowed_actions"]
    err = (await _json(await lead.post(f"/api/v1/tickets/{tid}/actions/reply", json={"reply": "已整改"}), 400))
    assert err["error"]["field"] == "basis"
    await _json(await lead.post(f"/api/v1/tickets/{tid}/actions/reply",
                                json={"reply": "已责令停止夜间施工", "basis": "《噪声污染防治法》第四十三条"}), 200)
    history = await _json(await lead.get(f"/api/v1/tickets/{tid}/history"), 200)
    assert [e["action"] for e in history["items"]] == ["create", "dispatch", "sign", "reply"]
    assert history["items"][2]["note"] == "已签收"


async def test_non_confidential_ticket_shows_the_masked_number_to_units(api_as: Any, seeded: Any) -> None:
    agent = await api_as("agent")
    lead = await api_as("liaison", unit_code=LEAD)
    t = (await _json(await agent.post("/api/v1/tickets", json={**BODY, "dispatch": {"unit_code": LEAD}}), 201))
    view = (await _json(await lead.get(f"/api/v1/tickets/{t['ticket']['id']}"), 200))["ticket"]
    assert view["caller"]["name"] == "赵六" and view["caller"]["number"] == "138****9999"
    revealed = (await _json(await lead.get(f"/api/v1/tickets/{t['ticket']['id']}?reveal=contact"), 200))["ticket"]
    assert revealed["caller"]["number"] == "13800009999"


async def test_bad_intake_names_the_field(api_as: Any, seeded: Any) -> None:
    agent = await api_as("agent")
    for change, field in [({"hotline_number": "00000"}, "hotline_number"), ({"category_code": "zz"}, "category_code"),
                          ({"subject": ""}, "subject"), ({"urgency": "asap"}, "urgency"),
                          ({"dispatch": {"unit_code": "nowhere"}}, "unit_code")]:
        err = (await _json(await agent.post("/api/v1/tickets", json={**BODY, **change}), 400))["error"]
        assert err["field"] == field
    # console users read the refusal in Chinese, with a stable code and the value named
    for change, code, shown in [({"hotline_number": "00000"}, "unknown_line", "00000"),
                                ({"category_code": "zz"}, "unknown_category", "zz"),
                                ({"urgency": "asap"}, "invalid_choice", "asap"),
                                ({"subject": ""}, "missing_field", "诉求事项"),
                                ({"confidential": "yes"}, "invalid_type", "yes"),
                                ({"dispatch": "now"}, "invalid_type", "now")]:
        err = (await _json(await agent.post("/api/v1/tickets", json={**BODY, **change}), 400))["error"]
        assert err["code"] == code and shown in err["message"], err
        assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"]), err
    assert (await _json(await agent.get("/api/v1/tickets"), 200))["items"] == []  # nothing half-applied
    liaison = await api_as("liaison", unit_code=LEAD)
    assert (await liaison.post("/api/v1/tickets", json=BODY)).status == 403


async def test_catalogue_units_and_categories_are_editable(api_as: Any, pool: asyncpg.Pool, seeded: Any) -> None:
    sup = await api_as("supervisor")
    agent = await api_as("agent")
    assert (await agent.put("/api/v1/dispatch-catalogue/0603", json={"unit_code": LEAD})).status == 403
    await _json(await sup.post("/api/v1/units", json={"code": "dinghai-yancang", "name": "定海区盐仓街道",
                                                      "kind": "street", "parent_code": "dinghai"}), 201)
    # the audit row was written by the transaction that created the unit
    assert await pool.fetchval("SELECT xmin::text FROM units WHERE code = 'dinghai-yancang'") == await pool.fetchval(
        "SELECT xmin::text FROM audit_log WHERE action = 'unit_created' AND object_id = 'dinghai-yancang'")
    await _json(await sup.put("/api/v1/dispatch-catalogue/0603", json={"unit_code": "dinghai-yancang"}), 200)
    err = (await _json(await sup.put("/api/v1/dispatch-catalogue/0603", json={"unit_code": "nope"}), 400))["error"]
    assert err["field"] == "unit_code"
    await _json(await sup.post("/api/v1/categories", json={"code": "060301", "name": "夜间施工噪声",
                                                           "parent_code": "0603"}), 201)
    err = (await _json(await sup.patch("/api/v1/categories/06", json={"parent_code": "060301"}), 400))["error"]
    assert "循环" in err["message"] and err["code"] == "invalid_parent"
    # the new leaf inherits the catalogue unit of its parent
    t = await _json(await agent.post("/api/v1/tickets", json={**BODY, "category_code": "060301", "dispatch": {}}), 201)
    assert t["ticket"]["lead_unit_code"] == "dinghai-yancang"
    tree = (await _json(await agent.get("/api/v1/categories"), 200))["items"]
    assert len(tree) == 20 and tree[0]["children"]


async def test_calendar_api_edit_recomputes_deadlines(api_as: Any, pool: asyncpg.Pool, seeded: Any) -> None:
    sup = await api_as("supervisor")
    cal = await _json(await sup.get("/api/v1/calendar?year=2026"), 200)
    assert cal["loaded"] and not cal["provisional"] and len(cal["days"]) == 39
    assert (await _json(await sup.get("/api/v1/calendar?year=2027"), 200))["provisional"] is True
    r = await _json(await sup.get("/api/v1/calendar/compute",
                                  params={"start": "2026-09-30T10:00:00", "working_days": "1"}), 200)
    assert r["deadline"] == "2026-10-08T10:00:00+08:00"
    r = await _json(await sup.get("/api/v1/calendar/compute",
                                  params={"start": "2026-02-13T10:00:00", "end": "2026-02-24T10:00:00"}), 200)
    assert r["working_days"] == 2
    agent = await api_as("agent")
    await _json(await agent.post("/api/v1/tickets", json={**BODY, "dispatch": {"unit_code": LEAD}}), 201)
    before = await pool.fetchval("SELECT deadline FROM sla_clocks WHERE stage = 'handle'")
    day = before.date().isoformat()
    err = (await _json(await agent.put(f"/api/v1/calendar/days/{day}", json={"kind": "holiday"}), 403))
    assert err["error"]["code"] == "forbidden"
    weekday = "2026-12-30"
    r = await _json(await sup.put(f"/api/v1/calendar/days/{weekday}", json={"kind": "holiday", "name": "演示"}), 200)
    assert r["clocks_recomputed"] == 2
    after = await pool.fetchval("SELECT deadline FROM sla_clocks WHERE stage = 'handle'")
    assert after >= before
    await _json(await sup.request("PUT", f"/api/v1/calendar/days/{weekday}", json={"kind": None}), 200)


async def test_sla_policy_api(api_as: Any, seeded: Any) -> None:
    sup = await api_as("supervisor")
    items = (await _json(await sup.get("/api/v1/sla/policies"), 200))["items"]
    assert len(items) == 14
    err = (await _json(await sup.post("/api/v1/sla/policies", json={"stage": "handle", "amount": -1,
                                                                    "unit": "working_days"}), 400))["error"]
    assert err["field"] == "amount"
    p = await _json(await sup.post("/api/v1/sla/policies", json={"stage": "handle", "hotline_number": "12315",
                                                                 "amount": 7, "unit": "working_days"}), 201)
    assert (await sup.post("/api/v1/sla/policies", json={"stage": "handle", "hotline_number": "12315",
                                                         "amount": 7, "unit": "working_days"})).status == 409
    await _json(await sup.patch(f"/api/v1/sla/policies/{p['policy']['id']}", json={"amount": 6}), 200)
    assert (await sup.delete(f"/api/v1/sla/policies/{p['policy']['id']}")).status == 200
