"""What both AGI transports share on top of the wire protocol: the channel's
hang-up state, reading one command's reply, and the Channel methods the call flows
use. A transport supplies ``command()`` (send + ``await self._read_reply()``) and
``_next_line()`` (the next reply line, raising :class:`ChannelHungUp` at end of input)."""

from __future__ import annotations

from hotline.agi.protocol import AgiReply, DeadChannel, ReplyReader
from hotline.calls.channel import ChannelHungUp


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

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command("GET VARIABLE", name)
        return (reply.data or "") if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 3) -> None:
        try:
            await self.command("VERBOSE", message, level)
        except ChannelHungUp:
            pass
