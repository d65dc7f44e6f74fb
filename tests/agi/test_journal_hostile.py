"""The journal under faults (issue 11, finding 9): an operation whose call is not yet
in the database waits for it (bounded by age, then kept in rejected.jsonl with the
reason) instead of being dropped; a torn last line never glues onto the next entry;
rejected.jsonl (callers' numbers) is readable by its owner only."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta

import asyncpg

from hotline.calls.store import apply_op, make_entry


async def test_hangup_of_a_call_not_yet_recorded_waits_for_its_start(agi, pool: asyncpg.Pool) -> None:
    """Node B journals a call's hangup; its start is in node A's journal. B replays
    first: the hangup must wait, not be marked applied and lost."""
    journal = agi.ctx.journal
    end = make_entry("end", "elsewhere-1", {"at": datetime.now(UTC).isoformat(), "cause": "16"})
    journal.append(end)
    first = await journal.replay(agi.ctx.store)
    assert (first.applied, first.waiting, first.rejected) == (0, 1, 0)
    assert await pool.fetchval("SELECT count(*) FROM call_journal_applied WHERE entry_id = $1", end["id"]) == 0
    assert not journal.has_pending()  # waiting does not hold back the live flows
    assert journal.needs_replay()     # but the replay loop comes back for it

    # node A's replay brings the start
    async with pool.acquire() as conn, conn.transaction():
        await apply_op(conn, make_entry("start", "elsewhere-1", {"hotline_number": "12345", "route": "platform"}),
                       live=False)
    second = await journal.replay(agi.ctx.store)
    assert (second.applied, second.waiting) == (1, 0)
    row = await agi.call_row(pool, "elsewhere-1")
    assert row["ended_at"] is not None
    assert not journal.needs_replay()


async def test_waiting_operation_expires_into_rejected_with_the_reason(agi, pool: asyncpg.Pool) -> None:
    journal = agi.ctx.journal
    start = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    journal.clock = lambda: start
    end = make_entry("end", "never-recorded", {"at": start.isoformat(), "cause": "16"})
    journal.append(end)
    assert (await journal.replay(agi.ctx.store)).waiting == 1
    journal.clock = lambda: start + timedelta(seconds=journal.max_wait - 1)
    assert (await journal.replay(agi.ctx.store)).waiting == 1  # still within the bound
    journal.clock = lambda: start + timedelta(seconds=journal.max_wait + 1)
    result = await journal.replay(agi.ctx.store)
    assert (result.waiting, result.rejected) == (0, 1)
    kept = [json.loads(line) for line in (journal.directory / "rejected.jsonl").read_text().splitlines()]
    assert [k["id"] for k in kept] == [end["id"]]
    assert "not in the database" in kept[0]["rejected"]["reason"]
    assert not journal.needs_replay()


async def test_torn_last_line_does_not_swallow_the_next_entry(agi, pool: asyncpg.Pool) -> None:
    journal = agi.ctx.journal
    journal.append(make_entry("start", "before-tear", {"hotline_number": "12345", "route": "platform"}))
    with journal.live_path.open("ab") as fh:
        fh.write(b'{"id": "x", "op": "sta')  # the process died in the middle of a write
    # the next process appends after the torn line
    journal.append(make_entry("start", "after-tear", {"hotline_number": "12345", "route": "platform"}))
    await journal.append_async(make_entry("start", "after-tear-2", {"hotline_number": "12345", "route": "platform"}))
    result = await journal.replay(agi.ctx.store)
    assert (result.applied, result.rejected) == (3, 1)
    assert await agi.call_row(pool, "after-tear") is not None
    assert await agi.call_row(pool, "after-tear-2") is not None
    assert (journal.directory / "rejected.jsonl").read_bytes() == b'{"id": "x", "op": "sta\n'


async def test_rejected_file_is_readable_by_its_owner_only(agi, pool: asyncpg.Pool) -> None:
    journal = agi.ctx.journal
    journal.directory.mkdir(parents=True, exist_ok=True)
    journal.append(make_entry("start", "poison-1", {"hotline_number": "00000", "caller_number": "13812345678"}))
    old_umask = os.umask(0o022)
    try:
        result = await journal.replay(agi.ctx.store)
    finally:
        os.umask(old_umask)
    assert result.rejected == 1
    rejected = journal.directory / "rejected.jsonl"
    assert b"13812345678" in rejected.read_bytes()
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o600
    # a file left world-readable by an older version is tightened on the next rejection
    rejected.chmod(0o644)
    with journal.live_path.open("ab") as fh:
        fh.write(b"garbage\n")
    await journal.replay(agi.ctx.store)
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o600
