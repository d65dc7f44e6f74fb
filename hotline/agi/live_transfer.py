"""The PBX side of a console transfer: :class:`AmiMover` moves a live caller
channel through AMI (``Setvar`` then ``Redirect``) for
:func:`hotline.calls.live_transfer.transfer_live_call`, which decides the
transfer and undoes it when the PBX refuses. ``hotline.node`` hands
:func:`ami_mover` to the runtime; the web routes never import this adapter."""

from __future__ import annotations

from collections.abc import Mapping

from hotline.agi.ami import AmiClient, AmiConfig, AmiError
from hotline.calls.settings import CallSettings
from hotline.calls.transfer import ChannelMover, ChannelNotMoved


class AmiMover:
    def __init__(self, client: AmiClient) -> None:
        self.client = client

    async def redirect(self, channel: str, context: str, exten: str, priority: int, *,
                       variables: Mapping[str, str]) -> None:
        try:
            await self.client.redirect(channel, context, exten, priority, variables=dict(variables))
        except AmiError as exc:
            raise ChannelNotMoved(str(exc)) from exc


def ami_mover(c: CallSettings) -> ChannelMover | None:
    """The mover for ``[calls] ami_*``, or None when no AMI is configured."""
    if not c.ami_host:
        return None
    return AmiMover(AmiClient(AmiConfig(c.ami_host, c.ami_port, c.ami_username, c.ami_secret, c.ami_timeout)))
