"""What both AGI transports share on top of the wire protocol: the channel's
hang-up state, reading one command's reply, and the Channel methods the call flows
use. A transport supplies ``command()`` (send + ``await self._read_reply()``) and
``_next_line()`` (the next reply line, raising :class:`ChannelHungUp` at end of input)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from hotline.agi.protocol import MAX_COMMAND_BYTES, AgiReply, DeadChannel, ReplyReader
from hotline.calls.channel import ChannelHungUp

#: a variable name and a value ``MSet(name=value,...)`` takes as they are: no comma
#: (its separator), quote, backslash, ``|``, ``$`` or ``{`` (EXEC passes the text to
#: the application unexpanded), space or control character
_MSET_NAME = re.compile(r"_{0,2}[A-Za-z][A-Za-z0-9_]*\Z")
_MSET_VALUE = re.compile(r"[A-Za-z0-9_.:/@+#*~%-]*\Z")


class AgiChannelBase:
    def __init__(self) -> None:
        self._hung_up = False
        #: why the channel went away, for the call record (None while it is up)
        self.end_reason: str | None = None

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def _gone(self, reason: str) -> None:
        """Mark the caller gone; the first reason seen is the one recorded."""
        self._hung_up = True
        self.end_reason = self.end_reason or reason

    async def command(self, name: str, *args: object) -> AgiReply:
        raise NotImplementedError

    async def _next_line(self) -> str:
        raise NotImplementedError

    async def _read_reply(self) -> AgiReply:
        reader = ReplyReader()
        try:
            while True:
                reply = reader.feed(await self._next_line())
                if reader.hangup_seen:
                    self._gone("HANGUP")  # unsolicited: the real reply follows
                if reply is not None:
                    return reply
        except DeadChannel:
            self._gone("511 dead channel")
            raise

    async def set_variable(self, name: str, value: str) -> None:
        reply = await self.command("SET VARIABLE", name, value)
        if reply.result == "-1":
            self._hung_up = True
            raise ChannelHungUp(f"SET VARIABLE {name} failed: {reply.text}")

    async def set_variables(self, variables: Mapping[str, str]) -> int:
        """Set several variables: those ``MSet`` can carry in one ``EXEC`` (one round
        trip for both sides instead of one per variable), the others one by one. Stops
        at a hangup (see :attr:`hung_up`); returns how many were set."""
        together = {k: v for k, v in variables.items() if _MSET_NAME.match(k) and _MSET_VALUE.match(v)}
        text = ",".join(f"{k}={v}" for k, v in together.items())
        if len(together) < 2 or len(text) > MAX_COMMAND_BYTES - 32:
            together, text = {}, ""
        count = 0
        try:
            if together:
                reply = await self.command("EXEC", "MSet", text)
                if reply.result == "-1":
                    self._gone("EXEC MSet failed")
                    return 0
                if reply.result == "-2":  # no MSet application on this PBX: one by one
                    together = {}
                else:
                    count = len(together)
            for name, value in variables.items():
                if name in together:
                    continue
                if self._hung_up:
                    break
                await self.set_variable(name, value)
                count += 1
        except ChannelHungUp:
            self._hung_up = True
        return count

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command("GET VARIABLE", name)
        return (reply.data or "") if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 3) -> None:
        try:
            await self.command("VERBOSE", message, level)
        except ChannelHungUp:
            pass
