"""The supervisor's call records (通话记录) with recording playback (录音回放), in real
headless chromium against a real recordings directory: the panel lists the calls with
masked numbers, a recorded call has a player whose source is its recording (the WAV file
Asterisk's MixMonitor wrote, served seekable and audited per play), an unrecorded one
says 无录音; an agent who was not on the call may not listen."""

from __future__ import annotations

import math
import struct
import wave
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hotline.calls.recordings import recording_relpath

pytestmark = pytest.mark.browser

RECORDED_AT = datetime(2026, 11, 30, 2, 15, tzinfo=UTC)  # 10:15 in Zhoushan
MISSED_AT = datetime(2026, 11, 30, 1, 40, tzinfo=UTC)  # 09:40 in Zhoushan
RECORDED_CALLER, MISSED_CALLER = "13812345678", "13900001111"

FETCH = """async ([src, range]) => {
    const r = await fetch(src, range ? {headers: {Range: range}} : {});
    const body = new Uint8Array(await r.arrayBuffer());
    return {status: r.status, type: r.headers.get('content-type'), bytes: Array.from(body)};
}"""


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Any, recordings: Path) -> Any:
    """The test settings with call recording on: ``[calls] recordings_dir`` is the tmp directory."""
    extra = {k: dict(v) for k, v in settings.extra.items()}
    extra.setdefault("calls", {})["recordings_dir"] = str(recordings)
    return replace(settings, extra=extra)


def write_wav(path: Path) -> bytes:
    """Half a second of a 440 Hz tone, 8 kHz mono 16-bit (what MixMonitor writes for a telephone call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(4000))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(frames)
    return path.read_bytes()


async def insert_call(pool: asyncpg.Pool, uid: str, line: str, caller: str, *, route: str, state: str,
                      started_at: datetime, wait: float, talk: float | None, agent_id: int | None) -> int:
    answered = None if talk is None else started_at + timedelta(seconds=wait)
    ended = started_at + timedelta(seconds=wait + (talk or 0))
    return int(await pool.fetchval(
        """INSERT INTO calls (call_uid, hotline_number, caller_number, caller_kind, route, queue, state,
                              started_at, queued_at, answered_at, ended_at, wait_seconds, talk_seconds, agent_id)
           VALUES ($1, $2, $3, 'mobile', $4, $5, $6, $7, $7, $8, $9, $10, $11, $12) RETURNING id""",
        uid, line, caller, route, f"hotline-{line}", state, started_at, answered, ended, wait, talk, agent_id))


async def plays(pool: asyncpg.Pool, call_id: int) -> list[Any]:
    return [r["user_id"] for r in await pool.fetch(
        "SELECT user_id FROM audit_log WHERE action = 'call.recording_played' AND object_id = $1 ORDER BY id",
        str(call_id))]


async def test_supervisor_plays_a_recorded_call(pages, pool, recordings, place_call) -> None:
    on_call = await pages.user("agent", display_name="刘海涛")
    recorded = await insert_call(pool, "1764468900.17", "12345", RECORDED_CALLER, route="platform", state="completed",
                                 started_at=RECORDED_AT, wait=8, talk=95, agent_id=on_call.id)
    missed = await insert_call(pool, "1764466800.5", "12333", MISSED_CALLER, route="dual", state="abandoned",
                               started_at=MISSED_AT, wait=21, talk=None, agent_id=None)
    wav = write_wav(recordings / recording_relpath("1764468900.17", RECORDED_AT))

    supervisor = await pages.user("supervisor")
    page = await pages.sign_in(supervisor, expect="supervisor")
    await page.wait_for_selector("#call-records[data-loaded='1'] #call-records-table")
    rows = page.locator("#call-records-table tr.call-row")
    assert await rows.evaluate_all("rs => rs.map(r => Number(r.dataset.id))") == [recorded, missed]  # latest first

    first = page.locator(f"tr.call-row[data-id='{recorded}'] td")
    assert await first.all_inner_texts() == ["2026-11-30 10:15", "12345", "138****5678", "12345主线", "已结束",
                                             "8 / 95", "录音"]
    second = page.locator(f"tr.call-row[data-id='{missed}'] td")
    assert await second.all_inner_texts() == ["2026-11-30 09:40", "12333", "139****1111", "双号并行", "放弃",
                                              "21 / —", "无录音"]
    text = await page.inner_text("#call-records")
    assert RECORDED_CALLER not in text and MISSED_CALLER not in text  # masked as the API returns them
    assert await second.locator("audio").count() == 0

    audio = page.locator(f"tr.call-row[data-id='{recorded}'] audio")
    src = await audio.get_attribute("src")
    assert src == f"/api/v1/calls/{recorded}/recording"
    assert await audio.get_attribute("preload") == "none"
    assert await plays(pool, recorded) == []  # listing the calls fetched no recording
    await pages.shot(page, "supervisor-call-records")

    # the recording as the page gets it: the file itself, as WAV, and each play audited
    got = await page.evaluate(FETCH, [src, None])
    assert (got["status"], got["type"], len(got["bytes"])) == (200, "audio/wav", len(wav))
    assert bytes(got["bytes"]) == wav
    assert await plays(pool, recorded) == [supervisor.id]
    # seekable: a byte range (what the audio element asks for when the supervisor skips ahead)
    part = await page.evaluate(FETCH, [src, "bytes=44-1043"])
    assert (part["status"], bytes(part["bytes"])) == (206, wav[44:1044])
    assert await plays(pool, recorded) == [supervisor.id]  # a seek is not another play
    # and the browser's own player reads it: half a second of audio
    duration = await audio.evaluate("""a => new Promise((resolve, reject) => {
        a.addEventListener('loadedmetadata', () => resolve(a.duration), {once: true});
        a.addEventListener('error', () => reject(new Error(`media error ${a.error && a.error.code}`)), {once: true});
        a.preload = 'metadata'; a.load();
    })""")
    assert duration == pytest.approx(0.5, abs=0.01)

    # a call without a recording: 404 in Chinese
    none = await page.evaluate("""async (id) => {
        const r = await fetch(`/api/v1/calls/${id}/recording`);
        return [r.status, (await r.json()).error];
    }""", missed)
    assert none[0] == 404 and none[1]["code"] == "not_found" and "没有录音" in none[1]["message"]

    # the filters: state, then line (a change starts a load at once: the panel is not loaded until it is done)
    async def shown_after(select: str, value: str) -> list[int]:
        await page.select_option(select, value)
        await page.wait_for_selector("#call-records[data-loaded='1']")
        return await rows.evaluate_all("rs => rs.map(r => Number(r.dataset.id))")

    assert await shown_after("#c-state", "abandoned") == [missed]
    assert await shown_after("#c-state", "") == [recorded, missed]
    assert await shown_after("#c-line", "12345") == [recorded]

    # a new call refreshes the panel with the wallboard push; the player is kept (not rebuilt)
    await audio.evaluate("a => { a.dataset.kept = 'yes'; }")
    queued = await place_call("12345", "13600001234", state="queued")
    await page.locator(f"tr.call-row[data-id='{queued}']").wait_for()
    assert await page.locator(f"tr.call-row[data-id='{recorded}'] audio").get_attribute("data-kept") == "yes"
    assert await page.inner_text(f"tr.call-row[data-id='{queued}'] td.recording-cell") == "无录音"


async def test_only_those_on_the_call_may_listen(pages, pool, recordings) -> None:
    on_call = await pages.user("agent", display_name="刘海涛")
    other = await pages.user("agent", display_name="孙丽")
    recorded = await insert_call(pool, "1764468900.18", "12345", RECORDED_CALLER, route="platform", state="completed",
                                 started_at=RECORDED_AT, wait=5, talk=60, agent_id=on_call.id)
    wav = write_wav(recordings / recording_relpath("1764468900.18", RECORDED_AT))
    src = f"/api/v1/calls/{recorded}/recording"

    page = await pages.sign_in(other, expect="agent")
    refused = await page.evaluate("""async (src) => {
        const r = await fetch(src);
        return [r.status, (await r.json()).error.code];
    }""", src)
    assert refused == [403, "forbidden"]
    assert await plays(pool, recorded) == []  # a refused request plays nothing

    page = await pages.sign_in(on_call, expect="agent")  # the agent who took the call may listen back
    got = await page.evaluate(FETCH, [src, None])
    assert (got["status"], bytes(got["bytes"])) == (200, wav)
    assert await plays(pool, recorded) == [on_call.id]
