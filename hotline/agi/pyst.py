"""Classic AGI (``AGI(/path/agi_scripts/incoming.py)``) through pyst2, running the same
call flows as the FastAGI server (one :class:`~hotline.calls.channel.Channel`
interface over both transports).

pyst2's ``asterisk.agi.AGI`` reads the header block and sends commands; replies
are read by our own strict reader (pyst2 does not know unsolicited ``HANGUP``
lines or ``511``). pyst2 writes a trace of everything to stderr, which Asterisk
prints on its console: we hand it ``/dev/null`` and log our own warnings to
``data_dir/log/agi_scripts.log`` instead.

Each process is one call: it opens a one-connection pool (or, without a
database URL or with the database down, routes from the registry and journals
the record like the FastAGI server does).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from typing import IO, Any

from hotline.agi.channel_base import AgiChannelBase
from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    build_request,
    decode_value,
    encode_command,
)
from hotline.calls.channel import ChannelHungUp

log = logging.getLogger("hotline.agi.classic")
_KEY_RE = re.compile(r"^agi_[a-z0-9_]{1,64}$")


class DefensiveStdin:
    """What pyst2 reads from: lines of at most ``limit`` bytes, decoded defensively."""

    def __init__(self, raw: IO[bytes], limit: int = 8192) -> None:
        self.raw = raw
        self.limit = limit

    def readline(self) -> str:
        data = self.raw.readline(self.limit + 1)
        if len(data) > self.limit and not data.endswith(b"\n"):
            raise AgiProtocolError("line longer than max_line_bytes")
        return decode_value(data)


class PystChannel(AgiChannelBase):
    """The Channel interface over a pyst2 ``AGI`` object (synchronous pipes: a
    process serves exactly one call, so blocking here blocks nobody else)."""

    def __init__(self, agi: Any) -> None:
        super().__init__()
        self.agi = agi
        #: arguments cut to fit Asterisk's 2 KB command buffer (as on the FastAGI session)
        self.truncated: list[str] = []
        lines, problems = [], []
        for key, value in agi.env.items():
            if _KEY_RE.match(key):
                lines.append((key, value))
            else:
                problems.append(f"malformed header line {key[:80]!r}")
        self._request: AgiRequest = build_request(lines, problems)

    @property
    def request(self) -> AgiRequest:
        return self._request

    async def command(self, name: str, *args: object) -> AgiReply:
        from asterisk.agi import AGIHangup

        if self._hung_up and self.end_reason == "connection closed":
            raise ChannelHungUp("stdin closed")
        try:
            self.agi.test_hangup()  # SIGHUP from Asterisk
            # the line as the FastAGI session sends it: quoted, at most MAX_COMMAND_BYTES
            # (pyst2 writes the text it is given plus a newline)
            before = len(self.truncated)
            line = encode_command(name, *args, notes=self.truncated).decode("utf-8").rstrip("\n")
            for note in self.truncated[before:]:
                log.warning("classic AGI: %s", note)
            self.agi.send_command(line)
            return await self._read_reply()
        except AGIHangup as exc:
            self._hung_up = True
            self.end_reason = self.end_reason or "SIGHUP"
            raise ChannelHungUp(str(exc)) from None
        except (BrokenPipeError, OSError) as exc:
            self._hung_up = True
            self.end_reason = "connection closed"
            raise ChannelHungUp(str(exc)) from None

    async def _next_line(self) -> str:
        raw = self.agi.stdin.readline()
        if raw == "":
            self._hung_up = True
            self.end_reason = "connection closed"
            raise ChannelHungUp("Asterisk closed stdin")
        return str(raw)

def _file_logging(settings: Any) -> None:
    root = logging.getLogger()
    root.handlers[:] = []
    try:
        directory = settings.data_dir / "log"
        directory.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(directory / "agi_scripts.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s pid={os.getpid()} %(name)s: %(message)s"))
    except OSError:
        handler = logging.NullHandler()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def run_script(name: str) -> int:
    """Entry point of ``agi_scripts/<name>.py``: one call, then exit."""
    from asterisk.agi import AGI

    from hotline.config import load_settings

    settings = load_settings()
    _file_logging(settings)
    stdout = sys.stdout
    if hasattr(stdout, "reconfigure"):
        stdout.reconfigure(encoding="utf-8", errors="replace")
    with open(os.devnull, "w") as quiet:  # pyst2's chatter never reaches the Asterisk console
        try:
            agi = AGI(stdin=DefensiveStdin(sys.stdin.buffer, settings.agi.max_line_bytes),
                      stdout=stdout, stderr=quiet)
        except AgiProtocolError as exc:
            log.warning("classic AGI %s: bad header block: %s", name, exc)
            return 1
        channel = PystChannel(agi)
        try:
            asyncio.run(_run(settings, name, channel))
        except ChannelHungUp:
            return 0
        except Exception:
            log.exception("classic AGI %s failed", name)
            return 1
    return 0


async def _run(settings: Any, name: str, channel: PystChannel) -> None:
    from hotline.agi.handlers import load_handlers
    from hotline.calls.context import CallContext
    from hotline.calls.store import is_connection_failure
    from hotline.db import Database
    from hotline.db.pool import create_pool
    from hotline.registry import load_registry
    from hotline.runtime import Runtime

    registry = load_registry(settings.registry_path)
    handler = load_handlers()[name]
    pool = None
    runtime = None
    if settings.database.url:
        try:
            pool = await asyncio.wait_for(
                create_pool(settings.database.url, settings, min_size=1, max_size=1), 2.0
            )
            runtime = Runtime(settings, registry, Database(pool=pool, url=settings.database.url))
        except Exception as exc:
            if not is_connection_failure(exc):
                raise
            log.warning("classic AGI %s: database unavailable (%s); routing from the registry", name, exc)
    ctx = CallContext.create(settings, registry, pool, runtime=runtime)
    try:
        await handler(ctx, channel)
    finally:
        if pool is not None:
            await pool.close()
