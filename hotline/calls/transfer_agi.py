"""Transfers decided from inside the dialplan (feature code or blind transfer into
the ``hotline-transfer`` context): the AGI runs on the caller's channel, so the
call is found by that channel's uniqueid."""

from __future__ import annotations

import logging

from hotline.calls.channel import Channel
from hotline.calls.context import CallContext
from hotline.calls.incoming import set_variables
from hotline.calls.store import DatabaseDown, make_entry, now
from hotline.calls.transfer import journal_failure, transfer_expert, transfer_subcenter
from hotline.errors import HotlineError

log = logging.getLogger("hotline.calls.transfer")


async def transfer_from_channel(ctx: CallContext, channel: Channel, kind: str) -> str:
    req = channel.request
    uid = (req.param("uid", 2) or req.uniqueid)[:150]
    target = req.param("target", 1).strip() or None
    flow = transfer_expert if kind == "expert" else transfer_subcenter
    try:
        result = await flow(ctx, call_uid=uid, target=target, via="agi")
    except DatabaseDown as exc:
        await ctx.writer.write(journal_failure(uid, kind, str(exc)))
        await set_variables(channel, {"HOTLINE_XFER_OUTCOME": "failed"})
        return "failed"
    except HotlineError as exc:
        log.warning("transfer_%s for %s refused: %s", kind, uid, exc.message)
        await ctx.writer.write(make_entry("update", uid, {"append": [{
            "step": f"transfer_{kind}", "outcome": "failed", "reason": exc.message[:200],
            "via": "agi", "at": now().isoformat(),
        }]}))
        await set_variables(channel, {"HOTLINE_XFER_OUTCOME": "failed"})
        return "failed"
    await set_variables(channel, result.variables(ctx.calls.callback_sound))
    return result.outcome
