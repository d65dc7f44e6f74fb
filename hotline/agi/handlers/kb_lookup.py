"""``agi://…/kb_lookup,<topic>,<line>,<uid>``: knowledge-base article ids for the screen-pop
(sets ``HOTLINE_KB_IDS``)."""

from __future__ import annotations

from hotline.agi.handlers import entry_point
from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.kb import KbResult
from hotline.calls.kb import kb_lookup as kb_lookup_flow


@entry_point("kb_lookup")
async def kb_lookup(ctx: CallContext, channel: Channel) -> KbResult:
    return await kb_lookup_flow(ctx, channel)
