"""``agi://…/agent_connect,<caller uniqueid>[,<interface>]``: run by the queue member's
gosub on the agent's channel; marks the call answered and pops it on the console
(``call.offered``)."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.lifecycle import ConnectResult
from hotline.calls.lifecycle import agent_connect as agent_connect_flow


@entry_point("agent_connect")
async def agent_connect(ctx: CallContext, channel: Channel) -> ConnectResult:
    return await agent_connect_flow(ctx, channel)
