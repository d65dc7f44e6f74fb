"""AGI command lines fit Asterisk's read buffer (issue 11, low): res_agi reads a
command into 2 KB; a longer line is cut and its tail read as the next command. What
we send is capped, values cut on a UTF-8 boundary (never inside an escape), and the
cut is reported so the call record can note it."""

from __future__ import annotations

import pytest

from hotline.agi.peer import run_call
from hotline.agi.protocol import MAX_COMMAND_BYTES, encode_command
from hotline.agi.server import FastAgiServer
from hotline.calls.context import CallContext


def _args_of(line: bytes) -> str:
    text = line.decode("utf-8")  # strict: a value cut inside a UTF-8 sequence fails here
    assert text.endswith('"\n')
    return text


@pytest.mark.parametrize("value", ["张" * 3000, "a" * 5000, '"' * 3000, "\\" * 3000, "x\\" * 1500, "😀" * 900])
def test_a_long_value_is_cut_to_fit_the_buffer(value: str) -> None:
    notes: list[str] = []
    line = encode_command("SET VARIABLE", "HOTLINE_NOTE", value, notes=notes)
    assert len(line) <= MAX_COMMAND_BYTES
    text = _args_of(line)
    assert text.startswith('SET VARIABLE "HOTLINE_NOTE" "')
    body = text[len('SET VARIABLE "HOTLINE_NOTE" "'):-2]
    # the quoted value still ends its quotes: no escape left open at the cut
    trailing = len(body) - len(body.rstrip("\\"))
    assert trailing % 2 == 0
    assert len(notes) == 1 and "argument 2" in notes[0]  # the cut is reported


def test_short_commands_are_sent_as_they_are() -> None:
    notes: list[str] = []
    assert encode_command("SET VARIABLE", "A", "张三", notes=notes) == 'SET VARIABLE "A" "张三"\n'.encode()
    assert notes == []


async def test_a_session_never_sends_more_than_the_buffer(runtime) -> None:
    seen: list[str] = []

    async def long_value(ctx, channel) -> None:
        await channel.set_variable("HOTLINE_KB_IDS", ",".join(f"kb-{i:06d}" for i in range(1000)))
        seen.extend(channel.truncated)

    ctx = CallContext.for_runtime(runtime)
    server = FastAgiServer(ctx, runtime.settings.agi, handlers={"long": long_value})
    await server.start("127.0.0.1", 0)
    try:
        transcript = await run_call("127.0.0.1", server.port, "long", {"agi_uniqueid": "cap-1"})
    finally:
        await server.stop(grace=1.0)
    assert len(transcript.commands) == 1
    assert len(transcript.commands[0].line.encode()) + 1 <= MAX_COMMAND_BYTES
    assert transcript.var("HOTLINE_KB_IDS").startswith("kb-000000,kb-000001")
    assert len(seen) == 1 and "SET VARIABLE" in seen[0]


async def test_the_classic_agi_path_is_capped_too() -> None:
    """``agi_scripts/*.py`` talk through pyst2: the same cap, the same note."""
    import io

    from asterisk.agi import AGI

    from hotline.agi.pyst import PystChannel

    stdin = io.StringIO("agi_request: incoming\nagi_uniqueid: cap-2\n\n200 result=1\n")
    stdout = io.StringIO()
    channel = PystChannel(AGI(stdin=stdin, stdout=stdout, stderr=io.StringIO()))
    await channel.set_variable("HOTLINE_KB_IDS", ",".join(f"kb-{i:06d}" for i in range(1000)))
    sent = stdout.getvalue()
    assert sent.startswith('SET VARIABLE "HOTLINE_KB_IDS" "kb-000000,kb-000001')
    assert len(sent.encode("utf-8")) <= MAX_COMMAND_BYTES and sent.endswith('"\n')
    assert len(channel.truncated) == 1 and "argument 2" in channel.truncated[0]
