"""A console transfer of a live call: the domain decides (expert or sub-centre,
with fallback and attempt log), then the caller's channel is moved by a
:class:`ChannelMover` (the PBX adapter: AMI ``Setvar HOTLINE_XFER_*`` and
``Redirect`` to ``hotline-transfer,decided,1``, where the generated dialplan acts
on the decision). If the PBX refuses, the decision is undone (the expert's seat
freed, the attempt marked failed).

The mover is a port: the composition root (``hotline.node``) gives the runtime
the AMI adapter (:func:`hotline.agi.live_transfer.ami_mover`), so neither this
module nor the web routes import an adapter."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from hotline.calls import store
from hotline.calls.context import CallContext
from hotline.calls.transfer import (
    TransferOutcome,
    release_attempt,
    transfer_expert,
    transfer_subcenter,
)
from hotline.errors import ValidationError

log = logging.getLogger("hotline.calls.transfer")
TRANSFER_CONTEXT = "hotline-transfer"
DECIDED_EXTEN = "decided"
KINDS = ("expert", "subcenter")


class ChannelNotMoved(Exception):
    """The PBX refused to move the channel, or could not be reached."""


class ChannelMover(Protocol):
    async def redirect(self, channel: str, context: str, exten: str, priority: int, *,
                       variables: Mapping[str, str]) -> None:
        """Move ``channel`` to ``context,exten,priority`` after setting ``variables``;
        raises :class:`ChannelNotMoved`."""


async def transfer_live_call(
    ctx: CallContext, *, call_id: int, kind: str, target: str | None = None, fallback: str | None = None,
    requested_by: int | None = None, mover: ChannelMover | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {list(KINDS)}", field="kind", value=kind)
    if kind == "expert":
        result: TransferOutcome = await transfer_expert(
            ctx, call_id=call_id, target=target, fallback=fallback, requested_by=requested_by, via="api")
    else:
        result = await transfer_subcenter(ctx, call_id=call_id, target=target, requested_by=requested_by, via="api")
    body = result.to_json()
    if result.outcome == "failed":
        body.update(channel_moved=False, note="nothing to move: the call stays where it is")
        return body
    if mover is None:
        body.update(channel_moved=None, note="no AMI configured ([calls] ami_host): decision recorded, channel not moved")
        return body
    async with ctx.store.connection() as conn:
        channel = await conn.fetchval("SELECT channel FROM calls WHERE id = $1", result.call_id)
    try:
        if not channel:
            raise ChannelNotMoved("the call has no Asterisk channel on record")
        await mover.redirect(channel, TRANSFER_CONTEXT, DECIDED_EXTEN, 1,
                             variables=result.variables(ctx.calls.callback_sound))
    except ChannelNotMoved as exc:
        log.warning("transfer of call %s: channel not moved: %s", result.call_id, exc)
        async with ctx.store.connection() as conn:
            async with conn.transaction():
                await release_attempt(conn, result.attempt_id, f"channel not moved: {exc}"[:300])
                # the citizen is still with the agent: the call is answered again
                await store.note_on_call(conn, result.call_id, [{
                    "step": f"transfer_{kind}", "attempt_id": result.attempt_id, "outcome": "failed",
                    "reason": f"AMI: {exc}"[:200]}], state="answered", only_from=("transferred", "queued"))
        body.update(outcome="failed", channel_moved=False, reason=f"channel not moved: {exc}")
        return body
    async with ctx.store.connection() as conn:
        await conn.execute("UPDATE transfer_attempts SET channel_moved = true WHERE id = $1", result.attempt_id)
    body.update(channel_moved=True, note=None)
    return body
