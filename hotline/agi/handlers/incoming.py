"""``agi://…/incoming?line=<number>``: route a citizen's call (see :mod:`hotline.calls.incoming`)."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.incoming import IncomingResult
from hotline.calls.incoming import incoming as incoming_flow


@entry_point("incoming")
async def incoming(ctx: CallContext, channel: Channel) -> IncomingResult:
    return await incoming_flow(ctx, channel)
