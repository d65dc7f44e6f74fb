"""Blocklist, service hours, repeat callers and the knowledge-base lookup."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time
from zoneinfo import ZoneInfo

import asyncpg
from support import wait_for

from hotline.agi.peer import run_call, simulate_call
from hotline.calls.blocklist import Blocklist
from hotline.registry import Registry
from hotline.registry.model import HoursWindow, ServiceHours
from hotline.runtime import Runtime


async def test_blocked_caller_hears_refusal_and_is_not_queued(agi, pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO blocklist (caller_number, reason) VALUES ('13811112222', '恶意骚扰')")
    call = await simulate_call(agi.host, agi.port, dialled="12345", caller="+86 138-1111-2222")
    first = call.transcripts[0]
    assert first.var("HOTLINE_ROUTE") == "blocked"
    assert first.var("HOTLINE_ANNOUNCEMENT") == "hotline/blocked"
    assert first.var("HOTLINE_QUEUE") is None
    row = await agi.call_row(pool, call.uid)
    assert row["route"] == "blocked"
    assert {"step": "blocklist", "outcome": "blocked", "reason": "恶意骚扰"} in row["decisions"]
    assert row["state"] == "completed" and row["disposition"] == "blocked"  # not counted as abandoned


async def test_expired_block_no_longer_applies(agi, pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO blocklist (caller_number, reason, expires_at) "
                       "VALUES ('13811113333', 'x', now() - interval '1 day')")
    t = await run_call(agi.host, agi.port, "incoming?line=12345",
                       {"agi_callerid": "13811113333", "agi_uniqueid": "b-2"})
    assert t.var("HOTLINE_ROUTE") == "platform"


def _with_office_hours(registry: Registry, number: str) -> Registry:
    hours = ServiceHours((HoursWindow(frozenset(range(5)), time(8, 30), time(17, 30)),))
    lines = tuple(dataclasses.replace(line, service_hours=hours) if line.number == number else line
                  for line in registry.lines)
    return Registry(lines)


async def test_out_of_hours_subcenter_goes_to_12345_7x24(runtime: Runtime, pool: asyncpg.Pool, make_harness) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    office = Runtime(runtime.settings, _with_office_hours(runtime.registry, "12366"), runtime.db)
    saturday_night = datetime(2026, 11, 28, 22, 0, tzinfo=tz)
    harness = await make_harness(office, clock=lambda: saturday_night)
    t = await run_call(harness.host, harness.port, "incoming?line=12366",
                       {"agi_callerid": "13812345678", "agi_uniqueid": "oh-1"})
    assert t.var("HOTLINE_ROUTE") == "out_of_hours"
    assert t.var("HOTLINE_QUEUE") == "hotline-12345"
    assert t.var("HOTLINE_ANNOUNCEMENT") == "hotline/closed-12366"
    assert t.var("HOTLINE_DIAL_TARGET") is None
    row = await harness.call_row(pool, "oh-1")
    closed = [d for d in row["decisions"] if d["step"] == "service_hours"]
    assert closed and closed[0]["outcome"] == "closed"
    # the same line on a Monday morning dials the sub-centre
    harness.ctx.clock = lambda: datetime(2026, 11, 30, 9, 0, tzinfo=tz)
    t = await run_call(harness.host, harness.port, "incoming?line=12366",
                       {"agi_callerid": "13812345678", "agi_uniqueid": "oh-2"})
    assert t.var("HOTLINE_ROUTE") == "subcenter"


async def _open_ticket(pool: asyncpg.Pool, caller: str, number: str = "12345") -> int:
    from hotline.tickets.intake import NewTicket, create_ticket

    async with pool.acquire() as conn:
        return await create_ticket(conn, NewTicket(hotline_number=number, subject="路灯不亮",
                                                   caller_number=caller))


async def test_repeat_caller_linked_to_open_ticket(agi, pool: asyncpg.Pool) -> None:
    older = await _open_ticket(pool, "13812340000")
    newer = await _open_ticket(pool, "+8613812340000")
    t = await run_call(agi.host, agi.port, "incoming?line=12349",
                       {"agi_callerid": "008613812340000", "agi_uniqueid": "r-1"})
    assert t.var("HOTLINE_TICKET_ID") == str(newer)
    row = await agi.call_row(pool, "r-1")
    assert row["repeat_ticket_id"] == newer
    linked = [d for d in row["decisions"] if d["step"] == "repeat_caller"]
    assert linked[0]["open_tickets"] == [newer, older]
    # another caller is not linked
    t = await run_call(agi.host, agi.port, "incoming?line=12349",
                       {"agi_callerid": "13899999999", "agi_uniqueid": "r-2"})
    assert t.var("HOTLINE_TICKET_ID") is None


async def test_repeat_caller_window_is_configurable(agi, pool: asyncpg.Pool) -> None:
    ticket = await _open_ticket(pool, "13812341111")
    await pool.execute("UPDATE tickets SET created_at = now() - interval '40 days' WHERE id = $1", ticket)
    t = await run_call(agi.host, agi.port, "incoming?line=12345",
                       {"agi_callerid": "13812341111", "agi_uniqueid": "r-3"})
    assert t.var("HOTLINE_TICKET_ID") is None  # outside the 30-day default window
    agi.ctx.calls = dataclasses.replace(agi.ctx.calls, repeat_window_days=60)
    t = await run_call(agi.host, agi.port, "incoming?line=12345",
                       {"agi_callerid": "13812341111", "agi_uniqueid": "r-4"})
    assert t.var("HOTLINE_TICKET_ID") == str(ticket)


async def test_kb_lookup_returns_article_ids_and_records_them(agi, pool: asyncpg.Pool) -> None:
    await run_call(agi.host, agi.port, "incoming?line=12333", {"agi_uniqueid": "k-1"})
    t = await run_call(agi.host, agi.port, "kb_lookup", {"agi_uniqueid": "k-1"},
                       args=["社保关系转移", "12333"])
    assert t.var("HOTLINE_KB_IDS") == "kb-12333-001,kb-12333-002,kb-12333-003"
    assert agi.kb.calls == [{"hotline_number": "12333", "text": "社保关系转移", "limit": 5}]
    row = await agi.call_row(pool, "k-1")
    kb = [d for d in row["decisions"] if d["step"] == "kb_lookup"]
    assert kb[0]["article_ids"] == ["kb-12333-001", "kb-12333-002", "kb-12333-003"]
    # a DTMF choice is not text: the line alone drives the suggestion
    await run_call(agi.host, agi.port, "kb_lookup", {"agi_uniqueid": "k-1"}, args=["2", "12333"])
    assert agi.kb.calls[-1]["text"] is None


async def test_kb_lookup_survives_a_failing_knowledge_base(agi, pool: asyncpg.Pool) -> None:
    class Broken:
        name = "broken"

        async def suggest(self, runtime, **kw):
            raise RuntimeError("index missing")

    agi.ctx.kb = Broken()
    await run_call(agi.host, agi.port, "incoming?line=12333", {"agi_uniqueid": "k-2"})
    t = await run_call(agi.host, agi.port, "kb_lookup", {"agi_uniqueid": "k-2"}, args=["x", "12333"])
    assert t.var("HOTLINE_KB_IDS") == "" and t.outcome == "closed"
    row = await agi.call_row(pool, "k-2")
    assert "index missing" in [d for d in row["decisions"] if d["step"] == "kb_lookup"][0]["error"]


async def test_kb_lookup_with_the_real_knowledge_base(runtime: Runtime, pool: asyncpg.Pool, tmp_path,
                                                      make_harness) -> None:
    """The real hotline.kb.suggest behind the port: a spoken topic on 12333 finds the article."""
    import datetime as dt

    from hotline.calls.context import CallContext
    from hotline.calls.ports import KbModule, default_kb
    from hotline.kb.engine import close_kb
    from hotline.kb.importer import import_path

    article = tmp_path / "kb" / "12333" / "kb-t-301.md"
    article.parent.mkdir(parents=True)
    article.write_text(
        '---\nid: kb-t-301\ntitle: "社会保险关系转移接续"\ncategory: "人力社保/社会保险/关系转移"\n'
        'issuing_unit: hrss\nmaterial_type: 办事指南\nhotlines: ["12333"]\nkeywords: ["社保转移"]\n'
        "valid_from: 2024-01-01\nvalid_to: null\nreview_due: 2030-01-01\n---\n"
        "跨省流动就业的参保人员，可以办理养老保险关系转移接续。\n", encoding="utf-8")
    report = await import_path(pool, tmp_path / "kb", today=dt.date(2026, 6, 1))
    assert report.written and not report.problems
    assert isinstance(default_kb(), KbModule)
    harness = await make_harness(runtime)
    harness.ctx.kb = CallContext.for_runtime(runtime).kb  # the real module, not the test double
    try:
        await run_call(harness.host, harness.port, "incoming?line=12333", {"agi_uniqueid": "kb-real"})
        t = await run_call(harness.host, harness.port, "kb_lookup", {"agi_uniqueid": "kb-real"},
                           args=["社保关系怎么转移", "12333"], timeout=30)
        assert "kb-t-301" in (t.var("HOTLINE_KB_IDS") or "").split(",")
        row = await harness.call_row(pool, "kb-real")
        assert [d for d in row["decisions"] if d["step"] == "kb_lookup"][0]["source"] == "hotline.kb.suggest"
    finally:
        await close_kb(runtime)


async def test_the_nodes_blocklist_copy_follows_the_table(runtime: Runtime, pool: asyncpg.Pool, make_harness) -> None:
    harness = await make_harness(runtime)
    copy = Blocklist(refresh_seconds=3600)  # only change notices reload it here
    await copy.start(pool, await runtime.events())
    harness.ctx.blocklist = copy
    try:
        await wait_for(lambda: copy.loaded, what="the blocklist copy loaded")

        async def route(caller: str, uid: str) -> str | None:
            t = await run_call(harness.host, harness.port, "incoming?line=12345",
                               {"agi_callerid": caller, "agi_uniqueid": uid})
            return t.var("HOTLINE_ROUTE")

        assert await route("13811114444", "bc-1") == "platform"
        assert (copy.answered, copy.missed) == (1, 0)  # answered from memory
        loads = copy.loads
        # an office blocks the caller: the table's trigger tells the node, which reloads
        await pool.execute("INSERT INTO blocklist (caller_number, reason) VALUES ('13811114444', '恶意骚扰')")
        await wait_for(lambda: copy.loaded and copy.loads > loads, what="the copy reloaded after the insert")
        assert await route("13811114444", "bc-2") == "blocked"
        row = await harness.call_row(pool, "bc-2")
        assert {"step": "blocklist", "outcome": "blocked", "reason": "恶意骚扰"} in row["decisions"]
        # an entry that has expired by the time of the call does not apply
        loads = copy.loads
        await pool.execute("UPDATE blocklist SET expires_at = now() - interval '1 minute' "
                           "WHERE caller_number = '13811114444'")
        await wait_for(lambda: copy.loaded and copy.loads > loads, what="the copy reloaded after the update")
        assert await route("13811114444", "bc-3") == "platform"
        assert copy.missed == 0
    finally:
        await copy.stop()


async def test_without_a_current_copy_the_call_asks_the_database(agi, pool: asyncpg.Pool) -> None:
    agi.ctx.blocklist = Blocklist()  # never loaded (the database was down when the node started)
    await pool.execute("INSERT INTO blocklist (caller_number, reason) VALUES ('13811115555', '恶意骚扰')")
    t = await run_call(agi.host, agi.port, "incoming?line=12345",
                       {"agi_callerid": "13811115555", "agi_uniqueid": "bc-db"})
    assert t.var("HOTLINE_ROUTE") == "blocked"
    assert (agi.ctx.blocklist.answered, agi.ctx.blocklist.missed) == (0, 1)
