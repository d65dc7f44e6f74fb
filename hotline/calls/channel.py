"""The one interface call flows use to talk to a channel, whatever the transport.

Two adapters implement it: the FastAGI session (``hotline.agi.session``) and the
classic-AGI adapter over pyst2 (``hotline.agi.pyst``). Flows read what Asterisk
sent in the request header (no round trip) and set channel variables; the
dialplan acts on them. Flows never import an adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class ChannelHungUp(Exception):
    """The caller is gone (``HANGUP`` seen, ``511`` or the connection closed)."""


class ChannelRequest(Protocol):
    """What Asterisk told us when the script started (``agi_*`` headers)."""

    @property
    def script(self) -> str: ...

    @property
    def uniqueid(self) -> str: ...

    @property
    def problems(self) -> list[str]: ...

    def get(self, key: str, default: str = "") -> str:
        """Header ``agi_<key>`` (``key`` with or without the ``agi_`` prefix)."""
        ...

    def param(self, name: str, position: int | None = None) -> str:
        """Query-string parameter ``name``, else positional argument ``position`` (1-based)."""
        ...


class Channel(Protocol):
    @property
    def request(self) -> ChannelRequest: ...

    @property
    def hung_up(self) -> bool:
        """True once the transport has reported a hangup."""
        ...

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable; raises :class:`ChannelHungUp` if the channel is gone."""
        ...

    async def set_variables(self, variables: Mapping[str, str]) -> int:
        """Set several variables in as few round trips as the transport allows; stops at
        a hangup (then :attr:`hung_up` is true) and returns how many were set."""
        ...

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value, None when unset."""
        ...

    async def verbose(self, message: str, level: int = 3) -> None:
        """A line on the Asterisk console (best effort, never raises on hangup)."""
        ...
