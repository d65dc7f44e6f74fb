"""``agi://…/dial_result,<attempt id>,${DIALSTATUS},<caller uniqueid>``: a ``Dial()`` to a
sub-centre or transfer target came back; records it and sends the call back to
the 12345 queue unless it was answered."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.lifecycle import DialResult
from hotline.calls.lifecycle import dial_result as dial_result_flow


@entry_point("dial_result")
async def dial_result(ctx: CallContext, channel: Channel) -> DialResult:
    return await dial_result_flow(ctx, channel)
