"""Call recording (全程录音) on a real Asterisk 22: every citizen call is recorded by the
generated dialplan's MixMonitor while it is bridged, also when the backend is down, and
the node finds the file from the call's record. The phones send audio here (the global
``MEDIA``: the agent's phone a tone, the citizen ``Milliwatt``), so the recording has
sound to hold."""

from __future__ import annotations

import array
import asyncio
import wave
from pathlib import Path
from typing import Any

from phone_support import PhoneSystem, start_phone_system, stop_phone_system
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.calls.context import CallContext
from hotline.calls.recordings import find_recording, recording_relpath
from hotline.calls.transfer import transfer_live_call
from hotline.console import seats
from hotline.telephony.pbx import seat_pbx

TALK = 2


async def _agent(system: PhoneSystem) -> int:
    user = await create_user(system.pool, "agent-8001", TEST_PASSWORD, ("agent",))
    await seats.set_phone(system.pool, system.registry, user.id, interface="Local/8001@agents", skills=[],
                          by_name="admin")
    await seats.change_state(system.pool, user.id, "ready", pbx=seat_pbx(system.runtime))
    return user.id


async def _speaking_call(system: PhoneSystem, line: str, caller: str) -> None:
    """A citizen who sends audio from the moment the call is up until it ends."""
    await system.rx(f"channel originate Local/{caller}*{line}@pstn application Milliwatt")


async def _ended(system: PhoneSystem, caller: str) -> Any:
    async def check() -> Any:
        row = await system.pool.fetchrow(
            "SELECT * FROM calls WHERE caller_number = $1 AND ended_at IS NOT NULL AND agent_id IS NOT NULL", caller)
        return row
    return await system.eventually(check, timeout=60, what=f"the call of {caller} answered and ended")


def _sound(path: Path) -> tuple[float, int]:
    """(seconds, peak amplitude) of a 16-bit WAV file."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        samples = array.array("h", wav.readframes(wav.getnframes()))
        return wav.getnframes() / wav.getframerate(), max((abs(s) for s in samples), default=0)


async def _setup(settings: Any, pbx_registry: Any, db_url: str, pbx: Any, tmp_path: Path) -> tuple[PhoneSystem, Path]:
    recordings = tmp_path / "recordings"
    system = await start_phone_system(settings, pbx_registry, db_url, pbx, calls={"recordings_dir": str(recordings)})
    assert await asyncio.to_thread(pbx.reload) == []  # the recording dialplan loads silently (and resets globals)
    await system.rx(f"dialplan set global TALK {TALK}")
    await system.rx("dialplan set global MEDIA 1")
    return system, recordings


async def test_an_answered_call_is_recorded_while_it_is_bridged(
    settings: Any, pbx_registry: Any, db_url: str, pbx: Any, tmp_path: Path,
) -> None:
    system, recordings = await _setup(settings, pbx_registry, db_url, pbx, tmp_path)
    try:
        agent = await _agent(system)
        await _speaking_call(system, "12345", "13900000001")
        row = await _ended(system, "13900000001")
        assert row["agent_id"] == agent
        path = await system.eventually(
            lambda: _closed(find_recording(recordings, row["call_uid"], row["started_at"])),
            timeout=10, what="the recording written")
        # named after the call's uid, under the UTC day it started
        assert path == recordings / recording_relpath(row["call_uid"], row["started_at"])
        seconds, peak = _sound(path)
        # the conversation (about TALK seconds with the agent), not the queue's wait, and it holds sound
        assert 0.5 < seconds < TALK + 1.5, seconds
        assert peak > 1000, peak
    finally:
        await stop_phone_system(system)


async def test_a_call_while_the_backend_is_down_is_recorded_too(
    settings: Any, pbx_registry: Any, db_url: str, pbx: Any, tmp_path: Path,
) -> None:
    """FastAGI down: the dialplan sends the call to the 12345 queue (fallback) and records
    it all the same; the call the records import makes finds its recording."""
    system, recordings = await _setup(settings, pbx_registry, db_url, pbx, tmp_path)
    try:
        await _agent(system)
        await system.stop_services(("agi",))
        await _speaking_call(system, "12366", "13900000002")
        row = await _ended(system, "13900000002")
        assert row["route"] == "fallback" and row["hotline_number"] == "12366", dict(row)
        path = await system.eventually(
            lambda: _closed(find_recording(recordings, row["call_uid"], row["started_at"])),
            timeout=10, what="the recording written")
        seconds, peak = _sound(path)
        assert seconds > 0.5 and peak > 1000, (seconds, peak)
    finally:
        await stop_phone_system(system)


async def test_the_recording_goes_on_through_a_transfer_to_a_subcentre(
    settings: Any, pbx_registry: Any, db_url: str, pbx: Any, tmp_path: Path,
) -> None:
    """The agent transfers the call to a sub-centre (the console's 转分中心: AMI moves the
    citizen's channel out of the agent's bridge into a Dial()); the one recording holds
    both conversations."""
    system, recordings = await _setup(settings, pbx_registry, db_url, pbx, tmp_path)
    try:
        agent = await _agent(system)
        await system.rx("dialplan set global TALK_8001 60")  # the agent would talk for a minute
        await system.rx("dialplan set global SUBCENTER_TALK 5")  # the sub-centre talks 5 s
        await _speaking_call(system, "12345", "13900000003")

        async def talking() -> Any:
            return await system.pool.fetchrow(
                "SELECT * FROM calls WHERE caller_number = '13900000003' AND state = 'answered'")

        call = await system.eventually(talking, what="the agent answering")
        ctx = CallContext.for_runtime(system.runtime)
        assert system.runtime.channel_mover is not None
        result = await transfer_live_call(ctx, call_id=call["id"], kind="subcenter", target="12367", fallback=None,
                                          requested_by=agent, mover=system.runtime.channel_mover(ctx.calls))
        assert result["outcome"] == "dialling" and result["channel_moved"] is True, result
        row = await _ended(system, "13900000003")
        path = await system.eventually(
            lambda: _closed(find_recording(recordings, row["call_uid"], row["started_at"])),
            timeout=10, what="the recording written")
        seconds, peak = _sound(path)
        # the sub-centre's 5 s after the agent's part: a recording that stopped at the
        # transfer would hold the agent's part only (the transfer follows the answer at once)
        assert seconds > 4.5 and peak > 1000, (seconds, peak)
        assert await system.pool.fetchval("SELECT count(*) FROM calls") == 1
    finally:
        await stop_phone_system(system)


async def _closed(path: Path | None) -> Path | None:
    """The file once MixMonitor has finished it (its WAV header then gives the length)."""
    if path is None:
        return None
    try:
        with wave.open(str(path), "rb") as wav:
            return path if wav.getnframes() > 0 else None
    except (EOFError, wave.Error):
        return None
