"""``agi://…/transfer_subcenter[?target=<sub-centre line>]``: an agent-initiated transfer
to a sub-centre from the dialplan (feature code / blind transfer)."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.transfer import transfer_from_channel


@entry_point("transfer_subcenter")
async def transfer_subcenter(ctx: CallContext, channel: Channel) -> str:
    return await transfer_from_channel(ctx, channel, "subcenter")
