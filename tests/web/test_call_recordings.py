"""Listening to a call's recording over HTTP: who may, what a play costs in the audit
trail, and what a call without one answers."""

from __future__ import annotations

import wave
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hotline.calls.recordings import recording_relpath
from hotline.calls.store import apply_op, make_entry
from hotline.config import Settings

STARTED = datetime(2026, 11, 30, 23, 59, 59, 990000, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    extra = {k: dict(v) for k, v in settings.extra.items()}
    extra.setdefault("calls", {})["recordings_dir"] = str(tmp_path / "recordings")
    return replace(settings, extra=extra)


async def _call(pool: asyncpg.Pool, uid: str, agent_id: int | None = None) -> int:
    async with pool.acquire() as conn:
        call_id = await apply_op(conn, make_entry("start", uid, {
            "source": "agi", "hotline_number": "12345", "caller_number": "13912345678", "caller_kind": "mobile",
            "route": "platform", "queue": "hotline-12345", "state": "queued", "started_at": STARTED.isoformat(),
            "decisions": []}))
        if agent_id is not None:
            await apply_op(conn, make_entry("answer", uid, {"at": STARTED.isoformat(), "agent_id": agent_id,
                                                            "answered_by": "Local/8001@agents"}), live=False)
    assert call_id is not None
    return call_id


def _recording(settings: Settings, uid: str, seconds: float = 0.25) -> bytes:
    path = Path(settings.extra["calls"]["recordings_dir"]) / recording_relpath(uid, STARTED)
    path.parent.mkdir(parents=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x10\x20" * int(8000 * seconds))
    return path.read_bytes()


async def _plays(pool: asyncpg.Pool, call_id: int) -> list[Any]:
    return await pool.fetch("SELECT user_id, detail FROM audit_log WHERE action = 'call.recording_played' "
                            "AND object_id = $1 ORDER BY id", str(call_id))


async def test_the_agent_on_the_call_and_a_supervisor_listen_and_each_play_is_audited(
    api_as: Any, pool: asyncpg.Pool, settings: Settings,
) -> None:
    agent = await api_as("agent")
    supervisor = await api_as("supervisor")
    call_id = await _call(pool, "1764547199.41", agent_id=agent.user.id)
    audio = _recording(settings, "1764547199.41")

    listing = await (await supervisor.get("/api/v1/calls")).json()
    assert [(c["id"], c["recording"]) for c in listing["items"]] == [(call_id, True)]
    assert (await (await agent.get(f"/api/v1/calls/{call_id}")).json())["recording"] is True

    for who in (agent, supervisor):
        resp = await who.get(f"/api/v1/calls/{call_id}/recording")
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "audio/wav"
        assert resp.headers["Cache-Control"] == "private, no-store"
        assert await resp.read() == audio
    # seeking (a Range that does not start at 0) is part of the same play: not audited again
    part = await supervisor.get(f"/api/v1/calls/{call_id}/recording", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == audio[100:200]
    plays = await _plays(pool, call_id)
    assert [p["user_id"] for p in plays] == [agent.user.id, supervisor.user.id]


async def test_an_agent_not_on_the_call_is_refused_and_nothing_is_audited(
    api_as: Any, pool: asyncpg.Pool, settings: Settings,
) -> None:
    other = await api_as("agent")
    call_id = await _call(pool, "1764547199.42")
    _recording(settings, "1764547199.42")
    resp = await other.get(f"/api/v1/calls/{call_id}/recording")
    assert resp.status == 403
    body = await resp.json()
    assert body["error"]["code"] == "forbidden" and "录音" in body["error"]["message"]
    assert await _plays(pool, call_id) == []


async def test_a_call_without_a_recording_says_so(api_as: Any, pool: asyncpg.Pool) -> None:
    supervisor = await api_as("supervisor")
    call_id = await _call(pool, "1764547199.43")
    assert (await (await supervisor.get(f"/api/v1/calls/{call_id}")).json())["recording"] is False
    resp = await supervisor.get(f"/api/v1/calls/{call_id}/recording")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"]["code"] == "not_found" and "没有录音" in body["error"]["message"]
    missing = await supervisor.get("/api/v1/calls/999999/recording")
    assert missing.status == 404
