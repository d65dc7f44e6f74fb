"""Unit assessment for the seeded month (tests/month_support.py): the composite score and
the ranking match figures computed by hand; appeals (a unit files, the centre approves
or rejects with a reason) and exemptions move the score, each with its audit row;
the weights are configuration, checked at start."""

import asyncpg
import pytest
from month_support import APRIL_1, MARCH, seed_march
from tickets_support import LEAD, OTHER, Cast

from hotline.assessment import AssessmentSettings, assessment_settings, grant_exemption, ranking
from hotline.config import Settings
from hotline.errors import ConfigError

# By hand, weights 10 / 45 / 45 (config/hotline.toml):
# LEAD  response 2/4, resolution 1/3, satisfaction 2/3 -> 100 × (0.1·0.5 + 0.45/3 + 0.45·2/3) = 50.00
# OTHER response 2/2, resolution 1/2, satisfaction 1/2 -> 100 × (0.1 + 0.225 + 0.225)       = 55.00
# OTHER with b2 (unresolved, 不满意) exempted: 1/1, 1/1, 1/1                              -> 100.00
DEFAULT = AssessmentSettings()


def _scores(rows: list[dict]) -> list[tuple[str, float | None, int | None]]:
    return [(r["unit_code"], r["score"], r["rank"]) for r in rows]


@pytest.fixture
async def march(pool: asyncpg.Pool, cast: Cast) -> dict[str, int]:
    async with pool.acquire() as conn:
        return await seed_march(conn, cast)


async def test_the_ranking_matches_the_hand_computation(pool: asyncpg.Pool, march: dict[str, int]) -> None:
    assert _scores(await ranking(pool, MARCH, DEFAULT, now=APRIL_1)) == [(OTHER, 55.0, 1), (LEAD, 50.0, 2)]
    # the weights are configuration: resolution alone
    only_resolution = AssessmentSettings(response_weight=0, resolution_weight=1, satisfaction_weight=0)
    assert _scores(await ranking(pool, MARCH, only_resolution, now=APRIL_1)) == [(OTHER, 50.0, 1),
                                                                                   (LEAD, 33.33, 2)]
    # satisfaction alone; then too few items leave a unit unranked
    only_satisfaction = AssessmentSettings(response_weight=0, resolution_weight=0, satisfaction_weight=1, min_items=1)
    rows = await ranking(pool, MARCH, only_satisfaction, now=APRIL_1)
    assert _scores(rows) == [(LEAD, 66.67, 1), (OTHER, 50.0, 2)]
    strict = AssessmentSettings(min_items=8)  # LEAD has 4 + 3 + 3 = 10 items, OTHER 2 + 2 + 2 = 6
    assert _scores(await ranking(pool, MARCH, strict, now=APRIL_1)) == [(LEAD, 50.0, 1), (OTHER, 55.0, None)]


async def test_equal_scores_share_a_rank(pool: asyncpg.Pool, cast: Cast, march: dict[str, int]) -> None:
    only_response = AssessmentSettings(response_weight=1, resolution_weight=0, satisfaction_weight=0)
    assert _scores(await ranking(pool, MARCH, only_response, now=APRIL_1)) == [(OTHER, 100.0, 1), (LEAD, 50.0, 2)]
    async with pool.acquire() as conn:  # LEAD's late sign-ins exempted: 2 / 2 on time, like OTHER
        for key in ("a2", "a4"):
            await grant_exemption(conn, cast.supervisor, march[key], LEAD, "系统故障期间派单")
    assert _scores(await ranking(pool, MARCH, only_response, now=APRIL_1)) == [(OTHER, 100.0, 1), (LEAD, 100.0, 1)]


async def test_appeals_and_exemptions_move_the_score_with_an_audit_trail(
        pool: asyncpg.Pool, march: dict[str, int], api_as) -> None:  # noqa: ANN001
    number = {k: await pool.fetchval("SELECT number FROM tickets WHERE id = $1", v) for k, v in march.items()}
    other = await api_as("liaison", unit_code=OTHER)
    lead = await api_as("liaison", unit_code=LEAD)
    supervisor = await api_as("supervisor")

    # a unit appeals only against its own tickets, and must say why
    assert (await lead.post("/api/v1/assessment/appeals", json={"ticket": number["b2"], "reason": "x"})).status == 404
    resp = await other.post("/api/v1/assessment/appeals", json={"ticket": number["b2"], "reason": " "})
    err = (await resp.json())["error"]
    assert resp.status == 400 and (err["field"], err["code"]) == ("reason", "missing_field")
    assert "请填写理由" in err["message"]
    filed = await other.post("/api/v1/assessment/appeals",
                             json={"ticket": number["b2"], "reason": "市民诉求超出法定职责（要求赔偿）"})
    assert filed.status == 201, await filed.text()
    appeal = (await filed.json())["appeal"]
    again = await other.post("/api/v1/assessment/appeals", json={"ticket": number["b2"], "reason": "再次申诉"})
    assert again.status == 409
    second = await (await other.post("/api/v1/assessment/appeals",
                                     json={"ticket": march["b1"], "reason": "已解决，不应计入"})).json()
    # the unit sees its own appeals; the centre sees all
    assert [a["ticket_number"] for a in (await (await lead.get("/api/v1/assessment/appeals")).json())["items"]] == []
    pending = (await (await supervisor.get("/api/v1/assessment/appeals?status=pending")).json())["items"]
    assert {a["id"] for a in pending} == {appeal["id"], second["appeal"]["id"]}

    # a unit cannot decide; the centre rejects one and approves the other, each with a reason
    assert (await other.post(f"/api/v1/assessment/appeals/{appeal['id']}/decision",
                             json={"decision": "approve", "reason": "自批"})).status == 403
    rejected = await supervisor.post(f"/api/v1/assessment/appeals/{second['appeal']['id']}/decision",
                                     json={"decision": "reject", "reason": "理由不成立"})
    assert (await rejected.json())["exemption"] is None
    approved = await supervisor.post(f"/api/v1/assessment/appeals/{appeal['id']}/decision",
                                     json={"decision": "approve", "reason": "经核实属实"})
    assert approved.status == 200, await approved.text()
    exemption = (await approved.json())["exemption"]
    assert exemption["ticket_id"] == march["b2"] and exemption["unit_code"] == OTHER
    assert (await supervisor.post(f"/api/v1/assessment/appeals/{appeal['id']}/decision",
                                  json={"decision": "reject", "reason": "改判"})).status == 409

    assert _scores(await ranking(pool, MARCH, DEFAULT, now=APRIL_1)) == [(OTHER, 100.0, 1), (LEAD, 50.0, 2)]
    resp = await supervisor.get("/api/v1/assessment/ranking?month=2026-03")
    body = await resp.json()
    assert [(r["unit_code"], r["score"], r["rank"], r["exempted"]) for r in body["rows"]] == [
        (OTHER, 100.0, 1, 1), (LEAD, 50.0, 2, 0)]
    assert body["weights"] == {"response_rate": 10.0, "resolution_rate": 45.0, "satisfaction_rate": 45.0}
    assert (await lead.get("/api/v1/assessment/ranking?month=2026-03")).status == 403

    # the centre exempts directly and revokes, with reasons; the score follows
    direct = await supervisor.post("/api/v1/assessment/exemptions",
                                   json={"ticket": number["a5"], "unit_code": LEAD, "reason": "不可抗力（台风）"})
    assert direct.status == 201, await direct.text()
    # LEAD without a5: response 2/4, resolution 1/2, satisfaction 2/2 -> 5 + 22.5 + 45 = 72.5
    assert _scores(await ranking(pool, MARCH, DEFAULT, now=APRIL_1)) == [(OTHER, 100.0, 1), (LEAD, 72.5, 2)]
    revoked = await supervisor.post(f"/api/v1/assessment/exemptions/{exemption['id']}/revoke",
                                    json={"reason": "复核后撤销"})
    assert revoked.status == 200, await revoked.text()
    assert _scores(await ranking(pool, MARCH, DEFAULT, now=APRIL_1)) == [(LEAD, 72.5, 1), (OTHER, 55.0, 2)]
    mine = (await (await other.get("/api/v1/assessment/exemptions?all=true")).json())["items"]
    assert [(e["ticket_number"], e["revoke_reason"]) for e in mine] == [(number["b2"], "复核后撤销")]

    audit = [r["action"] for r in await pool.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'assessment_%' ORDER BY id")]
    assert audit == ["assessment_appeal_filed", "assessment_appeal_filed", "assessment_appeal_rejected",
                     "assessment_exemption_granted", "assessment_appeal_approved", "assessment_exemption_granted",
                     "assessment_exemption_revoked"]


def test_the_weights_are_checked_at_start() -> None:
    with pytest.raises(ConfigError) as err:
        assessment_settings(Settings(extra={"assessment": {"resolution_weight": -1}}))
    assert err.value.field == "assessment.resolution_weight"
    with pytest.raises(ConfigError):
        assessment_settings(Settings(extra={"assessment": {"response_weight": 0, "resolution_weight": 0,
                                                           "satisfaction_weight": 0}}))
    with pytest.raises(ConfigError) as err:
        assessment_settings(Settings(extra={"assessment": {"weight": 1}}))
    assert err.value.field == "assessment.weight"
    assert assessment_settings(Settings(extra={"assessment": {"response_weight": 20}})).response_weight == 20.0
