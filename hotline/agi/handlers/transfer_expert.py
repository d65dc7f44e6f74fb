"""``agi://…/transfer_expert[?target=<dual line>]``: the feature-code / blind-transfer
path to the line's expert-seat pool (the console path decides through the API
and redirects the channel; both end in the ``hotline-xfer`` dialplan context)."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.transfer import transfer_from_channel


@entry_point("transfer_expert")
async def transfer_expert(ctx: CallContext, channel: Channel) -> str:
    return await transfer_from_channel(ctx, channel, "expert")
