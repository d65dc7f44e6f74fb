"""``kb_lookup``: hand the caller's topic (speech-recognition text, or none for a DTMF
choice) and the line to the knowledge base, and return article ids for the
agent's screen-pop. The knowledge base is behind :class:`hotline.calls.ports.KbPort`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hotline.calls.channel import Channel, ChannelHungUp
from hotline.calls.context import CallContext
from hotline.calls.store import make_entry, now

log = logging.getLogger("hotline.calls.kb")
MAX_IDS = 5


@dataclass(frozen=True, slots=True)
class KbResult:
    call_uid: str
    hotline_number: str | None
    text: str | None
    article_ids: list[str]
    error: str | None = None


async def kb_lookup(ctx: CallContext, channel: Channel) -> KbResult:
    """Arguments: 1 topic text (or DTMF digits), 2 line number, 3 caller uniqueid."""
    req = channel.request
    topic = req.param("topic", 1).strip()[:500]
    number = req.param("line", 2).strip() or None
    uid = (req.param("uid", 3) or req.uniqueid)[:150]
    if number is not None and ctx.registry.get(number) is None:
        number = None
    text = None if (not topic or topic.isdigit()) else topic
    error = None
    try:
        articles = await ctx.kb.suggest(ctx.runtime, hotline_number=number, text=text, limit=MAX_IDS)
        ids = [str(a["id"]) for a in articles if isinstance(a, dict) and a.get("id")][:MAX_IDS]
    except Exception as exc:  # the knowledge base must never hold a call up
        log.exception("knowledge-base suggest failed (%s)", ctx.kb.name)
        ids, error = [], f"{type(exc).__name__}: {exc}"[:200]
    decision: dict[str, Any] = {"step": "kb_lookup", "line": number, "text": text, "article_ids": ids,
                                "source": ctx.kb.name, "at": now().isoformat()}
    if error:
        decision["error"] = error
    await ctx.writer.write(make_entry("update", uid, {"append": [decision]}))
    try:
        await channel.set_variable("HOTLINE_KB_IDS", ",".join(ids))
    except ChannelHungUp:
        pass
    return KbResult(uid, number, text, ids, error)
