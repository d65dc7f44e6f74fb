"""Supervisor reports checked against an independent computation (plain Python
over the constructed data set), including the denominators, the short-abandon
split and the Asia/Shanghai period boundaries; CSV and XLSX exports."""

import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from openpyxl import load_workbook
from tickets_support import LEAD, OTHER, Cast, new_ticket

from hotline.calendar.core import SHANGHAI
from hotline.reports.metrics import Period, call_metrics, ticket_metrics
from hotline.tickets.workflow import apply

MARCH = Period(datetime(2026, 3, 1, tzinfo=SHANGHAI), datetime(2026, 4, 1, tzinfo=SHANGHAI))


async def _calls(pool: asyncpg.Pool, agents: list[int]) -> list[dict[str, Any]]:
    rng = random.Random(12345)
    calls = []
    # the edges: just before and after the month in Shanghai (other days in UTC)
    starts = [datetime(2026, 2, 28, 23, 59, tzinfo=SHANGHAI), datetime(2026, 3, 1, 0, 0, tzinfo=SHANGHAI),
              datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI), datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI)]
    starts += [datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 31 * 24 * 60))
               for _ in range(240)]
    for i, start in enumerate(starts):
        outcome = rng.choice(["answered", "answered", "answered", "abandoned", "not_queued"])
        wait = round(rng.choice([rng.uniform(0, 4.9), rng.uniform(5, 15), 15.0, rng.uniform(15.01, 90)]), 3)
        c = {"uid": f"r{i}", "line": rng.choice(["12345", "12315", "12333"]), "start": start,
             "queued": outcome != "not_queued", "wait": wait if outcome != "not_queued" else None,
             "answered": outcome == "answered", "state": {"answered": "completed", "abandoned": "abandoned",
                                                          "not_queued": "failed"}[outcome],
             "talk": round(rng.uniform(30, 600), 3) if outcome == "answered" else None,
             "acw": round(rng.uniform(0, 60), 3) if outcome == "answered" and rng.random() < 0.8 else None,
             "agent": rng.choice(agents) if outcome == "answered" else None}
        calls.append(c)
    await pool.executemany(
        """INSERT INTO calls (call_uid, hotline_number, caller_number, state, started_at, queued_at, answered_at,
                              ended_at, wait_seconds, talk_seconds, acw_seconds, agent_id)
           VALUES ($1, $2, '13800001111', $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [(c["uid"], c["line"], c["state"], c["start"], c["start"] if c["queued"] else None,
          c["start"] + timedelta(seconds=c["wait"]) if c["answered"] else None,
          c["start"] + timedelta(seconds=(c["wait"] or 0) + (c["talk"] or 0)), c["wait"], c["talk"], c["acw"],
          c["agent"]) for c in calls])
    return calls


def _expected_calls(calls: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for c in calls:
        if not (MARCH.start <= c["start"] < MARCH.end) or not c["queued"]:
            continue
        e = out.setdefault(key(c), {"offered": 0, "answered": 0, "abandoned": 0, "short_abandoned": 0,
                                    "within": 0, "waits": [], "handles": []})
        e["offered"] += 1
        if c["answered"]:
            e["answered"] += 1
            e["within"] += c["wait"] <= 15
            e["waits"].append(c["wait"])
            e["handles"].append(c["talk"] + (c["acw"] or 0))
        elif c["state"] == "abandoned":
            e["abandoned"] += 1
            e["short_abandoned"] += c["wait"] < 5
    return out


async def test_call_metrics_match_an_independent_computation(pool: asyncpg.Pool, cast: Cast) -> None:
    calls = await _calls(pool, [cast.agent.id, cast.supervisor.id])
    for group, key in [("total", lambda c: "all"), ("line", lambda c: c["line"]),
                       ("day", lambda c: c["start"].astimezone(SHANGHAI).date().isoformat())]:
        expected = _expected_calls(calls, key)
        rows = {r["key"]: r for r in await call_metrics(pool, MARCH, group)}
        assert set(rows) == set(expected), group
        for k, e in expected.items():
            r = rows[k]
            assert (r["offered"], r["answered"], r["abandoned"], r["short_abandoned"], r["answered_within_15s"]) == (
                e["offered"], e["answered"], e["abandoned"], e["short_abandoned"], e["within"]), (group, k)
            assert r["connection_rate"] == round(e["answered"] / e["offered"], 4)
            assert r["service_level_15s"] == round(e["within"] / e["offered"], 4)  # denominator: offered
            assert r["service_level_denominator"] == "offered"
            if e["waits"]:
                assert abs(r["asa_seconds"] - sum(e["waits"]) / len(e["waits"])) < 0.01
                assert abs(r["aht_seconds"] - sum(e["handles"]) / len(e["handles"])) < 0.01
    total = (await call_metrics(pool, MARCH, "total"))[0]
    month = await call_metrics(pool, MARCH, "month")
    assert [(r["key"], r["offered"]) for r in month] == [("2026-03-01", total["offered"])]
    weeks = await call_metrics(pool, MARCH, "week")
    assert weeks[0]["key"] == "2026-02-23" and sum(r["offered"] for r in weeks) == total["offered"]  # Mondays
    assert total["short_abandoned"] > 0 and total["abandoned"] > total["short_abandoned"]
    # the two calls at 00:00 and 23:59 Shanghai inside March count; the two outside do not
    inside = [c for c in calls if MARCH.start <= c["start"] < MARCH.end and c["queued"]]
    assert total["offered"] == len(inside)
    agents = {r["key"]: r for r in await call_metrics(pool, MARCH, "agent")}
    answered_by = _expected_calls([c for c in calls if c["answered"]], lambda c: str(c["agent"]))
    assert {k: r["answered"] for k, r in agents.items()} == {k: e["answered"] for k, e in answered_by.items()}
    assert all(r["offered"] is None for r in agents.values())  # not attributable to an agent


def sh(d: int, hh: int = 9) -> datetime:
    return datetime(2026, 3, d, hh, tzinfo=SHANGHAI)


async def test_ticket_metrics_match_the_scenarios(pool: asyncpg.Pool, cast: Cast) -> None:
    # each scenario: (line, actions with times); expected figures computed from the list below
    L, D, S, A = cast.liaison, cast.dispatcher, cast.supervisor, cast.agent
    sign = ("sign", L, {})
    reply = ("reply", L, {"reply": "已办理", "basis": "依据"})
    approve = ("approve_reply", D, {})
    scenarios: list[tuple[str, datetime, list[tuple[str, Any, dict, datetime]]]] = [
        ("12345", sh(2), [("close_direct", A, {"answer": "知识库答复"}, sh(2))]),
        ("12345", sh(2), [("close_direct", A, {"answer": "知识库答复"}, sh(2))]),
        ("12345", sh(2), [("dispatch", D, {"unit_code": LEAD}, sh(2)), (*sign, sh(2, 10)), (*reply, sh(3)),
                          (*approve, sh(3, 10)), ("callback_close", A, {"satisfaction": 5}, sh(4))]),
        ("12345", sh(2), [("dispatch", D, {"unit_code": LEAD}, sh(2)), (*sign, sh(4)),  # signed late
                          (*reply, sh(5)), (*approve, sh(5, 10)),
                          ("callback_reopen", A, {"satisfaction": 2, "reason": "未解决"}, sh(6)),
                          (*reply, sh(9)), (*approve, sh(9, 10)), ("callback_close", A, {"satisfaction": 3}, sh(10))]),
        ("12315", sh(3), [("dispatch", D, {"unit_code": LEAD}, sh(3)),
                          ("return", L, {"reason": "非本单位"}, sh(3, 10)),
                          ("redispatch", D, {"unit_code": OTHER}, sh(3, 11))]),
        ("12315", sh(3), [("dispatch", D, {"unit_code": LEAD}, sh(3)), (*sign, sh(3, 10)),
                          ("request_extension", L, {"days": 3, "reason": "需协调"}, sh(4)),
                          ("approve_extension", S, {}, sh(4, 10)), (*reply, sh(5)), (*approve, sh(5, 10))]),
        ("12315", sh(4), []),
        ("12345", datetime(2026, 2, 28, 23, tzinfo=SHANGHAI), [("close_direct", A, {"answer": "x"},
                                                                  datetime(2026, 2, 28, 23, tzinfo=SHANGHAI))]),
    ]
    ids = []
    async with pool.acquire() as conn:
        for line, created, steps in scenarios:
            tid = await new_ticket(conn, cast, hotline_number=line, kind="enquiry", at=created)
            for action, actor, data, at in steps:
                await apply(conn, tid, action, actor, dict(data), at=at)
            ids.append(tid)
        await apply(conn, ids[6], "merge", D, {"master_id": ids[5]}, at=sh(4, 10))
    rows = {r["key"]: r for r in await ticket_metrics(pool, MARCH, "line", now=sh(31))}
    a, b = rows["12345"], rows["12315"]
    # 12345: 4 tickets in March (the one at 23:00 on 28 Feb in Shanghai is not), 2 closed directly
    assert (a["created"], a["closed_directly"], a["dispatched"], a["closed"]) == (4, 2, 2, 4)
    assert a["direct_answer_rate"] == 0.5
    assert (a["reopened"], a["callback_owed"], a["called_back"], a["callback_rate"]) == (1, 2, 2, 1.0)
    # the last callback's satisfaction counts (the reopened ticket ended 基本满意)
    assert (a["satisfaction_5"], a["satisfaction_3"], a["satisfaction_2"], a["rated"]) == (1, 1, 0, 2)
    assert a["satisfied_rate"] == 1.0
    # signed at 10:00 on the 2nd (met) and on the 4th, after the 3rd 09:00 deadline (missed)
    assert (a["sign_met"], a["sign_decided"], a["signed_on_time_rate"]) == (1, 2, 0.5)
    # enquiry = 2 working days: replied on the 3rd (met), the 5th (missed), the reopened round on the 9th (met)
    assert (a["handle_met"], a["handle_decided"], a["completed_on_time_rate"]) == (2, 3, round(2 / 3, 4))
    assert (b["created"], b["dispatched"], b["returned"], b["extended"], b["merged"]) == (3, 2, 1, 1, 1)
    assert (b["callback_owed"], b["called_back"], b["callback_rate"]) == (1, 0, 0.0)
    # sign clocks on 12315: LEAD returned in time (met), OTHER never signed (running, overdue at 31 March), LEAD signed
    assert (b["sign_met"], b["sign_decided"], b["sign_running_overdue"]) == (2, 2, 1)
    total = (await ticket_metrics(pool, MARCH, "total", now=sh(31)))[0]
    assert total["created"] == a["created"] + b["created"] == 7
    units = {r["key"]: r for r in await ticket_metrics(pool, MARCH, "unit", now=sh(31))}
    assert units[OTHER]["sign_running_overdue"] == 1 and units[LEAD]["sign_decided"] == 4


async def test_report_exports(api_as: Any, pool: asyncpg.Pool, cast: Cast) -> None:
    await _calls(pool, [cast.agent.id])
    sup = await api_as("supervisor")
    agent = await api_as("agent")
    params = {"from": "2026-03-01", "to": "2026-03-31", "group": "line"}
    assert (await agent.get("/api/v1/reports/calls", params=params)).status == 403
    body = await (await sup.get("/api/v1/reports/calls", params=params)).json()
    assert body["definitions"]["service_level_15s"].endswith("（分母为呼入量，非接通量）")
    expected = {r["key"]: r for r in body["rows"]}
    csv_resp = await sup.get("/api/v1/reports/calls", params={**params, "format": "csv"})
    text = (await csv_resp.read()).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("分组,名称,呼入量（进入队列）")
    assert len(lines) == 1 + len(expected)
    xlsx = await sup.get("/api/v1/reports/tickets", params={**params, "format": "xlsx"})
    assert xlsx.status == 200
    wb = load_workbook(io.BytesIO(await xlsx.read()))
    assert wb.sheetnames[1] == "口径说明"
    xl = await sup.get("/api/v1/reports/calls", params={**params, "format": "xlsx"})
    ws = load_workbook(io.BytesIO(await xl.read())).active
    header = [c.value for c in ws[1]]
    row = {header[i]: c.value for i, c in enumerate(ws[2])}
    assert row["呼入量（进入队列）"] == expected[row["分组"]]["offered"]
    bad = await sup.get("/api/v1/reports/calls", params={"from": "2026-03-31", "to": "2026-03-01"})
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "to"
