"""Intake (受理): a new ticket with the five elements, validated, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hotline.calls import store
from hotline.errors import ValidationError
from hotline.phone import normalize
from hotline.tickets.history import append_event, transaction
from hotline.tickets.model import CHANNELS, KINDS, URGENCIES


@dataclass(slots=True)
class NewTicket:
    hotline_number: str
    subject: str
    facts: str = ""
    location: str = ""
    occurred_at: datetime | None = None
    caller_name: str = ""
    caller_number: str = ""
    contact_number: str = ""
    category_code: str | None = None
    region_code: str | None = None  # 属地: a GB/T 2260 code from the region tree
    kind: str = "help"
    urgency: str = "normal"
    channel: str = "phone"
    source: str = "console"
    confidential: bool = False
    attachments: list[dict[str, Any]] = field(default_factory=list)
    call_ids: list[int] = field(default_factory=list)
    callback_call_id: int | None = None


def _check_attachments(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ValidationError("attachments must be a list of {name, ref}", field="attachments")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("ref"), str) or not item["ref"].strip():
            raise ValidationError(f"attachments[{i}] needs a ref (a URL or storage key)", field="attachments")
        out.append({"name": str(item.get("name") or item["ref"])[:200], "ref": item["ref"][:500],
                    "type": str(item.get("type") or "")[:100]})
    return out


async def validate(conn: asyncpg.Connection, t: NewTicket) -> None:
    if not t.subject.strip():
        raise ValidationError("subject (what the matter is) is required", field="subject")
    if len(t.subject) > 200:
        raise ValidationError("subject must be at most 200 characters", field="subject")
    if t.kind not in KINDS:
        raise ValidationError(f"unknown kind {t.kind!r}; kinds are {list(KINDS)}", field="kind")
    if t.urgency not in URGENCIES:
        raise ValidationError(f"unknown urgency {t.urgency!r}; urgencies are {list(URGENCIES)}", field="urgency")
    if t.channel not in CHANNELS:
        raise ValidationError(f"unknown channel {t.channel!r}; channels are {list(CHANNELS)}", field="channel")
    refs = await conn.fetchrow(
        """SELECT (SELECT active FROM hotlines WHERE number = $1) AS line,
                  (SELECT active FROM ticket_categories WHERE code = $2) AS category,
                  (SELECT active FROM regions WHERE code = $3) AS region""",
        t.hotline_number, t.category_code, t.region_code)
    if refs["line"] is None:
        raise ValidationError(f"unknown line {t.hotline_number!r}", field="hotline_number")
    if t.category_code is not None:
        active = refs["category"]
        if active is None:
            raise ValidationError(f"unknown category {t.category_code!r}", field="category_code")
        if not active:
            raise ValidationError(f"category {t.category_code!r} is no longer in use", field="category_code")
    if t.region_code is not None and not refs["region"]:
        raise ValidationError(f"未知或已停用的区划代码 {t.region_code!r}", field="region_code")
    t.attachments = _check_attachments(t.attachments)
    for call_id in t.call_ids:
        if not await conn.fetchval("SELECT true FROM calls WHERE id = $1", call_id):
            raise ValidationError(f"unknown call {call_id}", field="call_ids")


async def create_ticket(
    conn: asyncpg.Connection,
    t: NewTicket,
    *,
    actor_id: int | None = None,
    actor_name: str = "",
    at: datetime | None = None,
) -> int:
    """Validate and store a ticket in state ``intake``; link its calls; record the
    ``create`` event. Runs in (or opens) one transaction: nothing half-applied."""
    async with transaction(conn):
        await validate(conn, t)
        caller = normalize(t.caller_number).number if t.caller_number else ""
        contact = normalize(t.contact_number).number if t.contact_number else ""
        ticket_id = await conn.fetchval(
            """INSERT INTO tickets (hotline_number, channel, source, kind, category_code, urgency,
                                    subject, facts, location, occurred_at, caller_name,
                                    caller_number, contact_number, confidential, attachments,
                                    callback_call_id, created_by, created_at, updated_at, region_code)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                       coalesce($18, now()), coalesce($18, now()), $19)
               RETURNING id""",
            t.hotline_number, t.channel, t.source, t.kind, t.category_code, t.urgency,
            t.subject.strip(), t.facts, t.location, t.occurred_at, t.caller_name.strip(),
            caller, contact, t.confidential, t.attachments, t.callback_call_id, actor_id, at, t.region_code,
        )
        for call_id in t.call_ids:
            await link_call(conn, ticket_id, call_id)
        await append_event(conn, ticket_id, action="create", from_state=None, to_state="intake",
                           actor_id=actor_id, actor_name=actor_name, at=at, unit_code=None,
                           detail={"channel": t.channel, "source": t.source})
        return int(ticket_id)


async def link_call(conn: asyncpg.Connection, ticket_id: int, call_id: int) -> None:
    await conn.execute(
        "INSERT INTO ticket_calls (ticket_id, call_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ticket_id, call_id,
    )
    await store.link_ticket(conn, call_id, ticket_id)
