"""Data-quality report: every metric checked on a constructed data set."""

from __future__ import annotations

import csv
import io
import json

import pytest
from ingest_records import call_record, ticket_record

from hotline.ingest.signing import sign_headers

DAY = "2026-11-27"


def at(clock: str) -> str:
    return f"{DAY}T{clock}+08:00"


def calls_batch_1() -> list[dict]:
    c1 = call_record("c1", seq=1, unit_code="tax", transfer_call_uid="U-ours-1",
                     started_at=at("11:50:00"), answered_at=at("11:50:10"), ended_at=at("11:58:00"))
    c2 = call_record("c2", seq=2, caller_number=None, region=None, transfer_call_uid="U-unknown",
                     started_at=at("11:55:00"), answered_at=at("11:55:05"), ended_at=at("11:59:00"))
    c3 = call_record("c3", seq=3, unit_code="no-such-unit", region="999999",
                     started_at=at("09:50:00"), answered_at=at("09:50:10"), ended_at=at("10:00:00"))
    c4 = call_record("c4", seq=5, region="330903", answered_at=None,
                     started_at=at("11:10:00"), ended_at=at("11:00:00"))  # ends before it starts
    bad = call_record("c5", seq=6, hotline_number="12399")
    return [c1, c2, c3, c4, bad]


def calls_batch_2() -> list[dict]:
    c1_again = calls_batch_1()[0]
    c2_v3 = call_record("c2", version=3, seq=8, caller_number=None, region=None, transfer_call_uid="U-unknown",
                        started_at=at("11:55:00"), answered_at=at("11:55:05"), ended_at=at("11:59:30"))
    return [c1_again, c2_v3]


@pytest.fixture
async def dataset(subcentre, pool):
    await pool.execute("INSERT INTO ticket_categories (code, name) VALUES ('tax-invoice', '发票')")
    body1 = await (await subcentre.send("calls", calls_batch_1())).json()
    assert body1["counts"] == {"accepted": 4, "updated": 0, "duplicate": 0, "rejected": 1}
    raw = json.dumps({"records": calls_batch_2()}).encode()
    headers = {**sign_headers(subcentre.code, subcentre.key, "POST", "/api/v1/ingest/calls", raw),
               "Content-Type": "application/json"}
    for _ in range(2):  # the second is an exact replay
        resp = await subcentre.client.post("/api/v1/ingest/calls", data=raw, headers=headers)
        assert resp.status == 200
    tickets = [
        ticket_record("t1", category="tax-invoice", state="closed", created_at=at("09:00:00"),
                      dispatched_at=at("10:00:00"), closed_at=at("09:30:00")),  # closed before dispatched
        ticket_record("t2", category="zz-unknown", state="signed", created_at=at("09:00:00"),
                      dispatched_at=None, signed_at=at("09:20:00")),  # signed but never dispatched
    ]
    assert (await (await subcentre.send("tickets", tickets)).json())["counts"]["accepted"] == 2
    # our own transfer records: two calls 12345 put through to the tax sub-centre that day
    for uid in ("U-ours-1", "U-ours-2"):
        call_id = await pool.fetchval(
            "INSERT INTO calls (call_uid, hotline_number, route, started_at) "
            "VALUES ($1, '12366', 'subcenter', $2::text::timestamptz) RETURNING id", uid, at("11:40:00"))
        await pool.execute(
            "INSERT INTO transfer_attempts (call_id, kind, hotline_number, outcome, created_at) "
            "VALUES ($1, 'subcenter', '12366', 'answered', $2::text::timestamptz)", call_id, at("11:41:00"))
    # everything above was received "now": move the receipt times to noon of the report day
    async with pool.acquire() as conn, conn.transaction():
        delta = await conn.fetchval("SELECT $1::text::timestamptz - now()", at("12:00:00"))
        for table, column in (("ingest_receipts", "received_at"), ("ingest_quarantine", "received_at"),
                              ("subcenter_calls", "received_at"), ("subcenter_tickets", "received_at"),
                              ("ingest_replays", "at")):
            await conn.execute(f"UPDATE {table} SET {column} = {column} + $1", delta)  # noqa: S608


async def test_every_quality_metric_on_a_constructed_day(dataset, api_as) -> None:
    api = await api_as("supervisor")
    resp = await api.get(f"/api/v1/quality/reports/tax-sub/{DAY}")
    assert resp.status == 200, await resp.text()
    report = (await resp.json())["items"][0]
    calls = report["kinds"]["calls"]

    assert calls["volume"] == {
        "received": 7, "accepted": 4, "updated": 1, "duplicate": 1, "rejected": 1,
        "rejected_by_reason": {"unknown_line": 1}, "duplicate_share": round(1 / 7, 4),
        "rejected_share": round(1 / 7, 4)}
    assert report["replays"] == 1

    assert calls["completeness"] == {"records": 4, "complete_records": 3, "complete_share": 0.75,
                                     "missing": {"caller_number": 1, "state": 0, "ended_at": 0, "region": 1}}

    validity = calls["validity"]
    assert validity["line"] == {"checked": 5, "invalid": 1, "valid_share": 0.8}
    assert (validity["unit"]["checked"], validity["unit"]["invalid"]) == (2, 1)
    assert validity["unit"]["invalid_values"] == ["no-such-unit"]
    assert (validity["region"]["checked"], validity["region"]["invalid"]) == (3, 1)
    assert validity["region"]["invalid_values"] == ["999999"]

    # lags: c2 v3 30 s, c2 60 s, c1 120 s, c4 3000 s, c3 7200 s (minus the seconds the test took)
    timeliness = calls["timeliness"]
    assert timeliness["measured"] == 5 and timeliness["late"] == 2 and timeliness["late_share"] == 0.4
    assert 100 <= timeliness["median_seconds"] <= 120
    assert 6300 <= timeliness["p95_seconds"] <= 6360
    assert timeliness["future_events"] == 0

    sequence = calls["sequence"]
    assert (sequence["gaps"], sequence["missing"], sequence["ranges"]) == (2, 2, [[4, 4], [7, 7]])
    assert sequence["records_with_version_gaps"] == 1 and sequence["version_gap_examples"] == ["c2"]

    machine = calls["state_machine"]
    assert machine["violating_records"] == 1
    assert machine["violations"]["ended_before_started"] == {"count": 1, "examples": ["c4"]}
    assert machine["violations"]["answered_without_answer_time"]["examples"] == ["c4"]
    assert machine["violations"]["answered_before_started"]["count"] == 0

    tickets = report["kinds"]["tickets"]
    assert tickets["validity"]["category"]["invalid_values"] == ["zz-unknown"]
    violations = tickets["state_machine"]["violations"]
    assert violations["closed_before_dispatched"]["examples"] == ["t1"]
    assert violations["signed_before_dispatched"]["examples"] == ["t2"]
    assert violations["in_handling_without_dispatch"]["examples"] == ["t2"]
    assert tickets["state_machine"]["violating_records"] == 2

    cross = report["cross_check"]
    assert (cross["our_transfers"], cross["subcenter_reported"], cross["matched"]) == (2, 2, 1)
    assert cross["missing_examples"] == ["U-ours-2"] and cross["unknown_examples"] == ["U-unknown"]

    # CSV: one metric per row, same figures
    resp = await api.get(f"/api/v1/quality/reports/tax-sub/{DAY}", params={"format": "csv"})
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    value = {(r["kind"], r["section"], r["metric"]): r["value"] for r in rows}
    assert value[("calls", "completeness", "complete_share")] == "0.75"
    assert value[("calls", "sequence", "ranges")] == "[4, 4] [7, 7]"
    assert value[("calls", "cross_check", "missing_at_subcenter")] == "1"

    # stored: listed afterwards; the on-demand regeneration gives the same figures
    listed = await (await api.get("/api/v1/quality/reports", params={"source": "tax-sub"})).json()
    assert [i["day"] for i in listed["items"]] == [DAY]
    again = await (await api.post("/api/v1/quality/reports", json={"day": DAY, "source": "tax-sub"})).json()
    assert again["items"][0]["kinds"]["calls"]["volume"] == calls["volume"]


async def test_quality_reports_are_for_supervisors(api_as, subcentre) -> None:
    agent = await api_as("agent")
    assert (await agent.get(f"/api/v1/quality/reports/tax-sub/{DAY}")).status == 403


async def test_daily_job_reports_yesterday_for_each_source(runtime, subcentre, pool) -> None:
    from hotline.quality.jobs import daily
    from hotline.scheduler import build_scheduler

    assert "quality.daily" in build_scheduler(runtime).job_ids
    assert await daily(runtime) == 1
    assert await pool.fetchval("SELECT count(*) FROM quality_reports WHERE source = 'tax-sub'") == 1
