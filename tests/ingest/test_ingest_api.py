"""The signed ingest API: signatures, replay window, bad input, idempotency."""

from __future__ import annotations

import json
import time

from ingest_records import call_record, ticket_record


async def test_batch_lands_and_reports_each_index(subcentre, pool) -> None:
    resp = await subcentre.send("calls", [call_record("c1", trunk="SIP-7", caller_number="+86 138 1234 5678"),
                                          call_record("c2")])
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["counts"] == {"accepted": 2, "updated": 0, "duplicate": 0, "rejected": 0}
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    row = await pool.fetchrow("SELECT * FROM subcenter_calls WHERE source_id = 'c1'")
    assert row["source"] == "tax-sub" and row["version"] == 1 and row["caller_number"] == "13812345678"
    assert row["data"] == {"trunk": "SIP-7", "caller_raw": "+86 138 1234 5678"}  # beside the typed columns
    assert await pool.fetchval("SELECT count(*) FROM ingest_receipts") == 2


async def test_idempotency_resend_changes_nothing_newer_version_updates(subcentre, pool) -> None:
    first = await (await subcentre.send("calls", [call_record("c1"), call_record("c2")])).json()
    assert first["counts"]["accepted"] == 2
    again = await (await subcentre.send("calls", [call_record("c1"), call_record("c2")])).json()
    assert again["counts"] == {"accepted": 0, "updated": 0, "duplicate": 2, "rejected": 0}
    newer = await (await subcentre.send(
        "calls", [call_record("c1", 2, state="abandoned"), call_record("c2", 1)])).json()
    assert [r["status"] for r in newer["results"]] == ["updated", "duplicate"]
    older = await (await subcentre.send("calls", [call_record("c1", 1)])).json()
    assert older["results"][0]["status"] == "duplicate"
    assert "older than the stored version 2" in older["results"][0]["note"]
    row = await pool.fetchrow("SELECT version, state FROM subcenter_calls WHERE source_id = 'c1'")
    assert (row["version"], row["state"]) == (2, "abandoned")
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 2


async def test_same_id_twice_in_one_batch_highest_version_wins(subcentre, pool) -> None:
    body = await (await subcentre.send("tickets", [ticket_record("t1", 1), ticket_record("t1", 3, state="closed",
                                                   closed_at="2026-11-27T12:00:00+08:00")])).json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "accepted"]
    assert await pool.fetchval("SELECT version FROM subcenter_tickets WHERE source_id = 't1'") == 3


async def test_partly_bad_batch_good_land_bad_quarantined_with_every_reason(subcentre, pool) -> None:
    bad = call_record("c-bad", started_at="yesterday", hotline_number="12399", version=0)
    del bad["source_id"]
    resp = await subcentre.send("calls", [call_record("c1"), bad, call_record("c3", state="sleeping")])
    body = await resp.json()
    assert resp.status == 200
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "rejected"]
    codes = {(r["field"], r["code"]) for r in body["results"][1]["reasons"]}
    assert codes == {("source_id", "required"), ("version", "range"), ("started_at", "time"),
                     ("hotline_number", "unknown_line")}
    assert body["results"][2]["reasons"][0]["field"] == "state"
    q = await pool.fetch("SELECT * FROM ingest_quarantine ORDER BY record_index")
    assert [r["record_index"] for r in q] == [1, 2]
    assert len(q[0]["reasons"]) == 4 and q[0]["record"]["started_at"] == "yesterday"
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 1


async def test_line_of_another_centre_is_refused(subcentre) -> None:
    body = await (await subcentre.send("calls", [call_record("c1", hotline_number="12333")])).json()
    assert body["results"][0]["reasons"][0]["code"] == "line_not_allowed"


async def test_csv_batch(subcentre, pool) -> None:
    csv_body = (
        b"source_id,version,hotline_number,caller_number,state,started_at,ended_at,talk_seconds\n"
        b"k1,1,12366,+86 138-1234-5678,completed,2026-11-27T09:00:00+08:00,2026-11-27T09:03:00+08:00,170.5\n"
        b"k2,1,12366,,abandoned,2026-11-27T09:01:00+08:00,,\n"
        b"k3,x,12366,,abandoned,2026-11-27T09:01:00+08:00,,\n"
        b"k4,1,12366\n"
    )
    body = await (await subcentre.send("calls", body=csv_body, content_type="text/csv")).json()
    assert body["format"] == "csv"
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "rejected", "rejected"]
    assert body["results"][3]["reasons"][0]["code"] == "csv_row"
    row = await pool.fetchrow("SELECT caller_number, talk_seconds FROM subcenter_calls WHERE source_id = 'k1'")
    assert row["caller_number"] == "13812345678" and float(row["talk_seconds"]) == 170.5


async def test_bad_signature_unknown_source_stale_timestamp(subcentre, pool) -> None:
    records = [call_record("c1")]
    resp = await subcentre.send("calls", records, key="not-the-key")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "bad_signature"
    resp = await subcentre.send("calls", records, timestamp=int(time.time()) - 3600)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "stale_timestamp"
    resp = await subcentre.send("calls", records, headers={"X-Hotline-Source": "nobody"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "bad_signature"  # same as a wrong key
    resp = await subcentre.client.post("/api/v1/ingest/calls", json={"records": records})
    assert resp.status == 401
    # a body changed after signing
    body = json.dumps({"records": records}).encode()
    from hotline.ingest.signing import sign_headers

    headers = sign_headers(subcentre.code, subcentre.key, "POST", "/api/v1/ingest/calls", body)
    resp = await subcentre.client.post("/api/v1/ingest/calls", data=body.replace(b"c1", b"c9"),
                                       headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 401
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 0


async def test_malformed_json_and_oversized_body(subcentre, pool) -> None:
    resp = await subcentre.send("calls", body=b'{"records": [', content_type="application/json")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed_body"
    resp = await subcentre.send("calls", body=b'{"rows": []}')
    assert resp.status == 400
    big = json.dumps({"records": [call_record(f"c{i}", summary="x" * 2000) for i in range(5000)]}).encode()
    assert len(big) > 8 * 1024 * 1024
    resp = await subcentre.send("calls", body=big)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"
    too_many = json.dumps({"records": [{"source_id": str(i)} for i in range(5001)]}).encode()
    resp = await subcentre.send("calls", body=too_many)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_many_records"
    assert await pool.fetchval("SELECT count(*) FROM ingest_batches") == 0


async def test_exact_replay_gets_the_stored_answer(subcentre, pool) -> None:
    body = json.dumps({"records": [call_record("c1")]}).encode()
    from hotline.ingest.signing import sign_headers

    headers = {**sign_headers(subcentre.code, subcentre.key, "POST", "/api/v1/ingest/calls", body),
               "Content-Type": "application/json"}
    first = await subcentre.client.post("/api/v1/ingest/calls", data=body, headers=headers)
    second = await subcentre.client.post("/api/v1/ingest/calls", data=body, headers=headers)
    assert second.status == 200 and second.headers.get("X-Hotline-Replayed") == "1"
    assert (await second.json()) == (await first.json())
    assert await pool.fetchval("SELECT count(*) FROM ingest_replays") == 1
    assert await pool.fetchval("SELECT count(*) FROM ingest_receipts") == 1


async def test_rate_limit_per_source(subcentre, pool) -> None:
    await pool.execute("UPDATE ingest_sources SET rate_per_minute = 1 WHERE code = 'tax-sub'")
    statuses = [(await subcentre.send("calls", [call_record(f"c{i}")])).status for i in range(25)]
    assert statuses.count(429) >= 1 and statuses[0] == 200
    resp = await subcentre.send("calls", [call_record("late")])
    assert resp.status == 429 and (await resp.json())["error"]["retry_after"] >= 1


async def test_concurrent_overlapping_batches_all_land_highest_version_wins(subcentre, pool) -> None:
    import asyncio
    import random

    async def send(version: int) -> dict:
        records = [call_record(f"o{i}", version) for i in range(200)]
        random.Random(version).shuffle(records)
        body = json.dumps({"records": records}).encode()
        from hotline.ingest.signing import sign_headers

        headers = {**sign_headers(subcentre.code, subcentre.key, "POST", "/api/v1/ingest/calls", body),
                   "Content-Type": "application/json"}
        resp = await subcentre.client.post("/api/v1/ingest/calls", data=body, headers=headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    answers = await asyncio.gather(*(send(v) for v in range(1, 7)))
    total = {k: sum(a["counts"][k] for a in answers) for k in ("accepted", "updated", "duplicate")}
    assert total["accepted"] == 200 and sum(total.values()) == 1200
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 200
    assert await pool.fetchval("SELECT min(version) FROM subcenter_calls") == 6


def test_caller_numbers_normalise_exactly_like_the_shared_normaliser() -> None:
    import random

    from hotline.ingest.schema import _normalized
    from hotline.phone import normalize

    samples = ["13812345678", "12345678901", "+8613812345678", "008613812345678", "05802012345", "2012345",
               "12345", "anonymous", "138 1234 5678", "1381234567x"]
    samples += [str(random.Random(7).randint(10**10, 2 * 10**10 - 1) + i * 7919) for i in range(2000)]
    assert [_normalized(s.strip()) for s in samples] == [normalize(s).number for s in samples]


async def test_a_rotated_key_overlaps_then_stops(subcentre, runtime, pool) -> None:
    """After ``rotate-key`` the sub-centre's old key still signs during the overlap (no
    refused batch while it switches), then only the new one does."""
    from hotline.ingest.keys import rotate_key

    old = subcentre.key
    new = await rotate_key(pool, runtime.settings, subcentre.code)
    resp = await subcentre.send("calls", [], key=old)
    assert resp.status != 401, await resp.text()
    resp = await subcentre.send("calls", [], key=new)
    assert resp.status != 401, await resp.text()
    # the overlap ([ingest] key_overlap_minutes, 60) is over
    await pool.execute("UPDATE ingest_sources SET key_rotated_at = now() - interval '61 minutes' WHERE code = $1",
                       subcentre.code)
    resp = await subcentre.send("calls", [], key=old)
    assert resp.status == 401
    resp = await subcentre.send("calls", [], key=new)
    assert resp.status != 401, await resp.text()
