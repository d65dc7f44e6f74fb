"""Classic AGI: the pyst2 scripts in agi_scripts/ run the same flows as FastAGI,
one process per call, with nothing on stderr (Asterisk's console)."""

from __future__ import annotations

import os
import sys

import asyncpg

from hotline.agi.peer import AgiPeer, classic_headers
from hotline.config import PROJECT_ROOT, Settings

SCRIPTS = PROJECT_ROOT / "agi_scripts"


def _env(settings: Settings, db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOTLINE_DATABASE_URL=db_url, HOTLINE_DATA_DIR=str(settings.data_dir))
    return env


async def _classic(name: str, args: list[str], env: dict[str, str], **behaviour):
    script = str(SCRIPTS / f"{name}.py")
    headers = classic_headers(script, args=args, uniqueid=behaviour.pop("uniqueid"),
                              callerid=behaviour.pop("callerid", "13800138000"))
    return await AgiPeer(**behaviour).run_process([sys.executable, script, *args], headers, env=env)


async def test_classic_incoming_matches_fastagi(agi, pool: asyncpg.Pool, settings: Settings, db_url: str) -> None:
    from hotline.agi.peer import run_call

    env = _env(settings, db_url)
    t = await _classic("incoming", ["12366"], env, uniqueid="classic-1", callerid="0086 13812345678")
    assert t.returncode == 0 and t.stderr == ""  # pyst2's trace stays off the console
    fast = await run_call(agi.host, agi.port, "incoming?line=12366",
                          {"agi_uniqueid": "fast-1", "agi_callerid": "0086 13812345678"})
    strip = {"__HOTLINE_CALL_ID"}
    assert {k: v for k, v in t.variables.items() if k not in strip} == \
        {k: v for k, v in fast.variables.items() if k not in strip}
    row = await agi.call_row(pool, "classic-1")
    assert row["route"] == "subcenter" and row["caller_number"] == "13812345678"
    assert t.var("HOTLINE_CALL_ID") == str(row["id"])

    t = await _classic("hangup", ["classic-1", "NOANSWER", "", "19"], env, uniqueid="classic-1")
    assert t.returncode == 0 and t.stderr == ""
    row = await agi.call_row(pool, "classic-1")
    assert row["state"] == "abandoned" and row["decisions"][-1]["dialstatus"] == "NOANSWER"


async def test_classic_hangup_before_reply_and_dead_channel(agi, pool: asyncpg.Pool, settings: Settings, db_url: str) -> None:
    env = _env(settings, db_url)
    t = await _classic("incoming", ["12349"], env, uniqueid="classic-2",
                       responder=lambda c, p: "200 result=0", hangup_after=0)
    assert t.returncode == 0 and t.stderr == ""
    assert t.replies[0] == ["HANGUP", "200 result=0"] and len(t.commands) == 1
    t = await _classic("incoming", ["12349"], env, uniqueid="classic-3", dead=True)
    assert t.returncode == 0 and len(t.commands) == 1
    for uid in ("classic-2", "classic-3"):
        row = await agi.call_row(pool, uid)
        assert row["route"] == "merged"
        assert [d for d in row["decisions"] if d["step"] == "agi"], uid


async def test_classic_without_database_routes_and_journals(agi, pool: asyncpg.Pool, settings: Settings, db_url: str) -> None:
    env = _env(settings, db_url)
    env["HOTLINE_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    t = await _classic("incoming", ["12315"], env, uniqueid="classic-down")
    assert t.returncode == 0 and t.stderr == ""
    assert t.var("HOTLINE_ROUTE") == "dual" and t.var("HOTLINE_CALL_ID") is None  # journaled
    assert await agi.call_row(pool, "classic-down") is None
    # the FastAGI node shares the data directory and replays the script's journal
    result = await agi.ctx.journal.replay(agi.ctx.store)
    assert result.applied == 1
    assert (await agi.call_row(pool, "classic-down"))["route"] == "dual"
