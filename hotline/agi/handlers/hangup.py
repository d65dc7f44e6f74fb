"""``agi://…/hangup,<uid>,${DIALSTATUS},${ANSWEREDTIME},${HANGUPCAUSE},${QUEUESTATUS}``:
the caller channel's hangup handler; finalises the call record."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.lifecycle import HangupResult
from hotline.calls.lifecycle import hangup as hangup_flow


@entry_point("hangup")
async def hangup(ctx: CallContext, channel: Channel) -> HangupResult:
    return await hangup_flow(ctx, channel)
