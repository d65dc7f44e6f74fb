"""The FastAGI protocol layer against hostile, broken and slow peers. Every case
ends with a bounded, logged outcome, the server keeps serving, and the call
record says what happened."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest

from hotline.agi.channel_base import AgiChannelBase
from hotline.agi.peer import asterisk_headers, parse_command, raw_exchange, run_call
from hotline.agi.protocol import (
    AgiInvalidCommand,
    AgiReply,
    AgiUsageError,
    build_request,
    decode_value,
    encode_command,
    parse_reply_line,
    quote_arg,
    split_script,
)
from hotline.agi.server import FastAgiServer
from hotline.calls.channel import ChannelHungUp
from hotline.runtime import Runtime


def _block(headers: dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n").encode()


async def _still_serving(agi) -> None:
    t = await run_call(agi.host, agi.port, "incoming?line=12345", {"agi_uniqueid": "still-ok"})
    assert t.var("HOTLINE_ROUTE") == "platform"


# -- pure protocol -------------------------------------------------------------

def test_quoting_cannot_inject_a_second_command() -> None:
    hostile = 'Zhang "San"\\\nSET VARIABLE "HOTLINE_ROUTE" "blocked"\r\x00'
    line = encode_command("SET VARIABLE", "CALLER_NAME", hostile)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    name, args = parse_command(line.decode())
    assert name == "SET VARIABLE"
    assert args == ["CALLER_NAME", 'Zhang "San"\\ SET VARIABLE "HOTLINE_ROUTE" "blocked"  ']
    assert quote_arg("张三") == '"张三"'
    with pytest.raises(ValueError):
        encode_command("SET VARIABLE\nHANGUP")


def test_reply_parsing() -> None:
    r = parse_reply_line("200 result=1 (hello (world)) endpos=1234")
    assert (r.result, r.data, r.endpos) == ("1", "hello (world)", 1234)
    r = parse_reply_line("200 result=-1")
    assert r.result == "-1" and not r.ok and r.data is None
    r = parse_reply_line("200 result=0 endpos=0")
    assert r.endpos == 0 and r.data is None
    assert parse_reply_line("200 result=0 Gosub complete").result == "0"


def test_utf8_cut_mid_character_and_bad_bytes() -> None:
    assert decode_value("张三".encode()[:-1]) == "张"
    assert decode_value(b"\xff\xfeabc") == "\ufffd\ufffdabc"


def test_script_names_with_and_without_slash_and_query() -> None:
    assert split_script("/incoming?line=12345&x=1") == ("incoming", {"line": "12345", "x": "1"})
    assert split_script("incoming") == ("incoming", {})
    assert split_script("hotline/incoming?line=") == ("incoming", {"line": ""})
    req = build_request([("agi_request", "agi://10.0.0.1:4573/hangup?uid=9"), ("agi_arg_2", "b"),
                         ("agi_arg_1", "a"), ("agi_arg_1", "dup")])
    assert req.script == "hangup" and req.query == {"uid": "9"}
    assert req.args == ["a", "b"] and req.problems == ["duplicate header agi_arg_1"]


# -- over the socket -------------------------------------------------------------

async def test_hangup_line_before_the_reply_is_noted_then_reply_read(agi, pool: asyncpg.Pool) -> None:
    def responder(command, peer):
        return "200 result=0" if command.name == "EXEC" else None

    t = await run_call(agi.host, agi.port, "incoming?line=12315", {"agi_uniqueid": "hb-1"},
                       responder=responder, hangup_after=0)
    # the routing answer is one EXEC MSet; the HANGUP line comes before its reply
    assert t.commands[0].name == "EXEC" and t.commands[0].args[0] == "MSet"
    assert t.replies[0] == ["HANGUP", "200 result=0"]
    assert len(t.commands) == 1  # the server read the real reply, then stopped
    row = await agi.call_row(pool, "hb-1")
    assert row["route"] == "dual"
    note = [d for d in row["decisions"] if d["step"] == "agi"]
    assert note and note[0]["variables_set"] == len(t.variables) >= 4
    assert agi.server.outcomes["hangup"] == 1
    await _still_serving(agi)


async def test_511_on_a_dead_channel(agi, pool: asyncpg.Pool) -> None:
    t = await run_call(agi.host, agi.port, "incoming?line=12349", {"agi_uniqueid": "dead-1"}, dead=True)
    assert len(t.commands) == 1 and t.replies[0][0].startswith("511")
    row = await agi.call_row(pool, "dead-1")
    assert row["route"] == "merged"
    assert [d for d in row["decisions"] if d["step"] == "agi"][0]["variables_set"] == 0
    await _still_serving(agi)


async def test_early_hangup_at_every_step(agi, pool: asyncpg.Pool) -> None:
    full = await run_call(agi.host, agi.port, "incoming?line=12366", {"agi_uniqueid": "eh-full"})
    steps = len(full.commands)
    assert [c.name for c in full.commands] == ["EXEC"] and full.var("HOTLINE_ROUTE") == "subcenter"
    for k in range(steps + 1):
        for mode in ("close_after", "hangup_after"):
            uid = f"eh-{mode}-{k}"
            t = await run_call(agi.host, agi.port, "incoming?line=12366", {"agi_uniqueid": uid}, **{mode: k})
            assert len(t.commands) <= k + 1
            row = await agi.call_row(pool, uid)
            assert row is not None and row["route"] == "subcenter", uid
            # and the hangup handler still finalises it
            await run_call(agi.host, agi.port, "hangup", {"agi_uniqueid": uid}, args=[uid, "", "", "16"])
            row = await agi.call_row(pool, uid)
            assert row["state"] == "abandoned" and row["ended_at"] is not None, uid
    assert agi.server.outcomes["error"] == 0
    await _still_serving(agi)


async def test_peer_that_never_answers_is_cut_off(runtime: Runtime, pool: asyncpg.Pool, make_harness) -> None:
    fast = dataclasses.replace(runtime.settings.agi, command_timeout=0.3, session_timeout=2.0)
    rt = Runtime(dataclasses.replace(runtime.settings, agi=fast), runtime.registry, runtime.db)
    harness = await make_harness(rt)
    t = await run_call(harness.host, harness.port, "incoming?line=12345", {"agi_uniqueid": "stall-1"},
                       stall_after=0)
    assert t.outcome == "stalled"  # the server closed on us: no dead channel held open
    assert harness.server.outcomes["timeout"] == 1
    row = await harness.call_row(pool, "stall-1")
    assert row["route"] == "platform"
    # a header block that never ends is cut off too
    received = await raw_exchange(harness.host, harness.port, b"agi_network: yes\nagi_uniqueid: x\n", timeout=5)
    assert received == b""
    assert harness.server.outcomes["timeout"] == 2
    await _still_serving(harness)


async def test_disconnect_mid_header_block(agi) -> None:
    await raw_exchange(agi.host, agi.port, b"agi_network: yes\nagi_network_scr", close_write=True)
    await agi.idle()
    assert agi.server.outcomes["hangup"] == 1
    await _still_serving(agi)


async def test_oversized_line_ends_the_session_only(agi, pool: asyncpg.Pool) -> None:
    headers = asterisk_headers("incoming?line=12345", uniqueid="big-1")
    headers["agi_calleridname"] = "x" * 9000
    received = await raw_exchange(agi.host, agi.port, _block(headers))
    assert received == b""
    assert agi.server.outcomes["protocol_error"] == 1
    assert await agi.call_row(pool, "big-1") is None  # the dialplan's AGISTATUS path queues it
    await _still_serving(agi)


async def test_malformed_and_non_utf8_headers_are_recorded(agi, pool: asyncpg.Pool) -> None:
    headers = asterisk_headers("incoming?line=12333", uniqueid="mal-1")
    del headers["agi_callerid"], headers["agi_calleridname"]
    block = _block(headers)[:-1]  # drop the blank line, add junk, then end the block
    block += b"this is not a header\nAGI_SHOUTING: x\nagi_calleridname: " + "张三".encode()[:-1] + b"\n"
    block += b"agi_callerid: 138\xff12345678\n\n"
    received = await raw_exchange(agi.host, agi.port, block)
    assert b'EXEC "MSet" "HOTLINE_ROUTE=dual,' in received
    row = await agi.call_row(pool, "mal-1")
    assert row["route"] == "dual"
    problems = [d for d in row["decisions"] if d["step"] == "headers"][0]["problems"]
    assert any("this is not a header" in p for p in problems) and any("AGI_SHOUTING" in p for p in problems)
    assert row["caller_kind"] == "invalid"  # a garbled number is kept as received, not guessed
    assert row["caller_raw"] == "138\ufffd12345678"
    assert row["caller_name"] == "张"  # cut mid-character: the incomplete tail is dropped


async def test_hostile_values_are_quoted_not_executed(agi, pool: asyncpg.Pool) -> None:
    uid = 'evil" "X\\'
    await run_call(agi.host, agi.port, "incoming?line=12345", {"agi_uniqueid": uid})
    assert (await agi.call_row(pool, uid))["route"] == "platform"

    class HostileKb:
        name = "hostile"

        async def suggest(self, runtime, **kw):
            return [{"id": 'kb-1" "X'}, {"id": "kb-2\nSET VARIABLE HOTLINE_ROUTE blocked"}]

    agi.ctx.kb = HostileKb()
    t = await run_call(agi.host, agi.port, "kb_lookup", {"agi_uniqueid": uid}, args=["x", "12345"])
    assert [c.name for c in t.commands] == ["SET VARIABLE"] and len(t.commands[0].args) == 2
    assert t.var("HOTLINE_KB_IDS") == 'kb-1" "X,kb-2 SET VARIABLE HOTLINE_ROUTE blocked'


async def test_unknown_script_is_refused_and_logged(agi) -> None:
    t = await run_call(agi.host, agi.port, "no_such_script?x=1", {"agi_uniqueid": "u-x"})
    assert t.commands == [] and t.outcome == "closed"
    assert agi.server.outcomes["unknown_script"] == 1
    await _still_serving(agi)


async def test_gosub_trying_510_and_multiline_520(runtime: Runtime) -> None:
    from hotline.calls.context import CallContext

    seen: dict[str, object] = {}

    async def probe(ctx, channel) -> None:
        seen["gosub"] = (await channel.command("GOSUB", "hotline-sub", "s", "1")).result
        try:
            await channel.command("NOOP")
        except AgiInvalidCommand as exc:
            seen["510"] = str(exc)
        try:
            await channel.command("EXEC", "Dial", "bad")
        except AgiUsageError as exc:
            seen["520"] = exc.usage
        seen["var"] = await channel.get_variable("FOO")
        seen["missing"] = await channel.get_variable("NOPE")

    def responder(command, peer):
        if command.name == "NOOP":
            return "510 Invalid or unknown command"
        if command.name == "EXEC":
            return ["520-Invalid command syntax.  Proper usage follows:", "Usage: EXEC <application> <options>",
                    "520 End of proper usage."]
        return None

    server = FastAgiServer(CallContext.for_runtime(runtime), runtime.settings.agi, handlers={"probe": probe})
    await server.start("127.0.0.1", 0)
    try:
        t = await run_call("127.0.0.1", server.port, "probe", responder=responder)
        from hotline.agi.peer import AgiPeer  # noqa: F401  (documented API)
    finally:
        await server.stop(grace=1.0)
    assert t.replies[0] == ["100 result=0 Trying...", "200 result=0 Gosub complete"]
    assert seen["gosub"] == "0"
    assert "510" in str(seen["510"])
    assert str(seen["520"]).splitlines()[1] == "Usage: EXEC <application> <options>"
    assert seen["var"] is None and seen["missing"] is None
    assert server.outcomes["ok"] == 1


# -- several variables in one round trip (EXEC MSet) -----------------------------------

class _ScriptedChannel(AgiChannelBase):
    """The reply lines a PBX gives, in order; records each command line sent."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.sent: list[bytes] = []

    async def command(self, name: str, *args: object) -> AgiReply:
        self.sent.append(encode_command(name, *args))
        return await self._read_reply()

    async def _next_line(self) -> str:
        if not self.replies:
            raise ChannelHungUp("no more replies")
        return self.replies.pop(0)


async def test_set_variables_batches_safe_values_and_sends_the_rest_one_by_one() -> None:
    channel = _ScriptedChannel(["200 result=0", "200 result=1"])
    count = await channel.set_variables({"HOTLINE_ROUTE": "dual", "__HOTLINE_CALL_ID": "7",
                                         "HOTLINE_NOTE": "a,b", "HOTLINE_QUEUE": "hotline-12345"})
    assert count == 4 and not channel.hung_up
    assert channel.sent == [b'EXEC "MSet" "HOTLINE_ROUTE=dual,__HOTLINE_CALL_ID=7,HOTLINE_QUEUE=hotline-12345"\n',
                            b'SET VARIABLE "HOTLINE_NOTE" "a,b"\n']  # a comma would split MSet's value


async def test_set_variables_without_mset_falls_back_and_stops_at_a_hangup() -> None:
    # EXEC of an application the PBX lacks answers result=-2: one by one, until a hangup
    channel = _ScriptedChannel(["200 result=-2", "200 result=1", "HANGUP", "200 result=1"])
    count = await channel.set_variables({"A": "1", "B": "2", "C": "3"})
    assert count == 2 and channel.hung_up
    assert [line.split(b" ")[0] for line in channel.sent] == [b"EXEC", b"SET", b"SET"]
    # a dead channel (511) on the batch: nothing set
    dead = _ScriptedChannel(["511 Command Not Permitted on a dead channel or intercept routine"])
    assert await dead.set_variables({"A": "1", "B": "2"}) == 0 and dead.hung_up
    # a lone variable needs no MSet
    one = _ScriptedChannel(["200 result=1"])
    assert await one.set_variables({"A": "1"}) == 1 and one.sent == [b'SET VARIABLE "A" "1"\n']
