"""The reply reader both transports share (FastAGI sessions and classic AGI pipes)."""

import pytest

from hotline.agi.protocol import AgiProtocolError, AgiUsageError, DeadChannel, ReplyReader


def feed_all(reader: ReplyReader, lines: list[str]):
    for line in lines:
        reply = reader.feed(line)
        if reply is not None:
            return reply
    return None


def test_hangup_and_trying_before_the_reply_are_noted_and_skipped() -> None:
    reader = ReplyReader()
    reply = feed_all(reader, ["HANGUP\n", "100 result=0 Trying...\n", "\n", "200 result=1 (hello) endpos=42\n"])
    assert reader.hangup_seen
    assert (reply.result, reply.data, reply.endpos) == ("1", "hello", 42)


def test_multi_line_usage_and_dead_channel() -> None:
    with pytest.raises(AgiUsageError) as err:
        feed_all(ReplyReader(), ["520-Invalid command syntax.  Proper usage follows:\n", "Usage: SET VARIABLE\n",
                                 "520 End of proper usage.\n"])
    assert "Usage: SET VARIABLE" in str(err.value)
    with pytest.raises(DeadChannel):
        feed_all(ReplyReader(), ["511 Command Not Permitted on a dead channel or intercept routine\n"])


def test_an_endless_usage_block_is_bounded() -> None:
    reader = ReplyReader(max_usage_lines=5)
    with pytest.raises(AgiProtocolError):
        feed_all(reader, ["520-usage\n"] + ["more\n"] * 10)
