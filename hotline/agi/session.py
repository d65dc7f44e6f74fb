"""One FastAGI session over an asyncio stream: reads the header block, sends
commands, reads replies. Implements :class:`hotline.calls.channel.Channel`.

Every read is bounded (``command_timeout`` per command, ``max_line_bytes`` per
line); a peer that stops answering ends the session instead of holding a dead
channel open (Asterisk itself has no read timeout on FastAGI).
"""

from __future__ import annotations

import asyncio
import logging

from hotline.agi.channel_base import AgiChannelBase
from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    build_request,
    decode_value,
    encode_command,
    parse_header_line,
)
from hotline.calls.channel import ChannelHungUp

log = logging.getLogger("hotline.agi")
MAX_HEADER_LINES = 200


class CommandTimeout(ChannelHungUp):
    """The peer did not answer a command in time: treated like a hangup (the session ends)."""


class ConnectionClosed(ChannelHungUp):
    """The peer closed the connection."""


async def _readline(reader: asyncio.StreamReader) -> bytes:
    """One ``\\n``-terminated line; the reader's ``limit`` caps its length."""
    try:
        return await reader.readuntil(b"\n")
    except Exception as exc:
        return _line_failure(exc)


def _line_failure(exc: Exception) -> bytes:
    """What a failed ``readuntil`` means: the partial last line, or the error to raise."""
    if isinstance(exc, asyncio.IncompleteReadError):
        if exc.partial:
            return exc.partial  # last line without newline: take it, EOF follows
        raise ConnectionClosed("peer closed the connection") from None
    if isinstance(exc, (asyncio.LimitOverrunError, ValueError)):  # ValueError: limit exceeded inside the buffer
        raise AgiProtocolError("line longer than the configured max_line_bytes") from None
    if isinstance(exc, (ConnectionError, OSError)):
        raise ConnectionClosed(str(exc)) from None
    raise exc


async def read_request(reader: asyncio.StreamReader) -> AgiRequest:
    """The header block up to its blank line (the caller bounds the wait)."""
    lines: list[tuple[str, str]] = []
    problems: list[str] = []
    readuntil = reader.readuntil
    for _ in range(MAX_HEADER_LINES):
        try:
            raw = await readuntil(b"\n")  # (inlined _readline: ~30 lines a session)
        except Exception as exc:
            raw = _line_failure(exc)
        if raw in (b"\n", b"\r\n"):
            return build_request(lines, problems)
        parsed = parse_header_line(raw)
        if parsed is None:
            text = decode_value(raw.rstrip(b"\r\n"))
            problems.append(f"malformed header line {text[:80]!r}")
            log.warning("FastAGI: skipping malformed header line %r", text[:200])
            continue
        lines.append(parsed)
    raise AgiProtocolError(f"header block longer than {MAX_HEADER_LINES} lines")


class FastAgiSession(AgiChannelBase):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: AgiRequest,
        *,
        command_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.writer = writer
        self._request = request
        self.command_timeout = command_timeout
        self._closed = False
        self.timed_out = False
        self.commands = 0
        #: values cut to fit Asterisk's command buffer, for the call record
        self.truncated: list[str] = []

    @property
    def request(self) -> AgiRequest:
        return self._request

    async def command(self, name: str, *args: object) -> AgiReply:
        """Send one command and return its ``200`` reply.

        Raises :class:`DeadChannel` (511), :class:`ConnectionClosed`,
        :class:`CommandTimeout` (all :class:`ChannelHungUp`), :class:`AgiInvalidCommand`
        (510), :class:`AgiUsageError` (520) or :class:`AgiProtocolError`."""
        if self._closed:
            raise ConnectionClosed("session already ended")
        data = encode_command(name, *args, notes=self.truncated)
        self.commands += 1
        try:
            async with asyncio.timeout(self.command_timeout):
                self.writer.write(data)
                await self.writer.drain()
                return await self._read_reply()
        except TimeoutError:
            self._closed = True
            self.timed_out = True
            self.end_reason = f"no reply to {name} within {self.command_timeout} s"
            raise CommandTimeout(f"no reply to {name} within {self.command_timeout} s") from None
        except (ConnectionError, OSError) as exc:
            self._closed = True
            self._hung_up = True
            self.end_reason = self.end_reason or "connection closed"
            raise ConnectionClosed(str(exc)) from None
        except ConnectionClosed:
            self._closed = True
            self._hung_up = True
            self.end_reason = self.end_reason or "connection closed"
            raise

    async def _next_line(self) -> str:
        try:
            raw = await self.reader.readuntil(b"\n")
        except Exception as exc:
            raw = _line_failure(exc)
        return decode_value(raw)

    def close(self) -> None:
        self._closed = True
