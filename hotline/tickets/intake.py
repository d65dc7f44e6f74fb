"""Intake (受理): a new ticket with the five elements, validated, in one transaction.

The one intake path: the tickets API, the console's ticket-on-a-call, the callback
request and the demo all come through :func:`create_ticket`; the two HTTP routes
hand their JSON body to :func:`open_ticket`, which also dispatches or closes the
new ticket at once when asked (same transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth.model import User
from hotline.calendar.store import CalendarStore
from hotline.config import ConfigFiles
from hotline.errors import NotFound, ValidationError
from hotline.phone import normalize
from hotline.tickets.history import append_event, transaction
from hotline.tickets.links import check_attachments, link_call
from hotline.tickets.model import CHANNELS, KINDS, URGENCIES
from hotline.tickets.workflow import apply

#: what the intake may do to the new ticket at once, in the same transaction
FIRST_STEPS = ("dispatch", "close_direct")


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


def _refuse(field: str, value: Any, message: str, code: str) -> ValidationError:
    return ValidationError(message, field=field, value=value, code=code)


def ticket_from_fields(fields: Mapping[str, Any], *, source: str) -> NewTicket:
    """A :class:`NewTicket` from a request's JSON fields, types checked (what the
    database must say, the line, category, region and calls, :func:`validate` checks)."""
    def text(key: str, default: str = "") -> str:
        value = fields.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise _refuse(key, value, f"{key} 必须是文本，收到 {value!r}", "invalid_type")
        return value

    def optional_code(key: str) -> str | None:
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            raise _refuse(key, value, f"{key} 必须是代码文本，收到 {value!r}", "invalid_type")
        return value

    line = fields.get("hotline_number")
    if not isinstance(line, str):
        raise _refuse("hotline_number", line, f"请填写受理线路 hotline_number（如 12345），收到 {line!r}",
                      "missing_field")
    calls = fields.get("call_ids") or []
    if not isinstance(calls, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in calls):
        raise _refuse("call_ids", calls, f"call_ids 必须是来电编号的列表，收到 {calls!r}", "invalid_type")
    confidential = fields.get("confidential", False)
    if not isinstance(confidential, bool):
        raise _refuse("confidential", confidential, f"confidential 必须是 true 或 false，收到 {confidential!r}",
                      "invalid_type")
    occurred = fields.get("occurred_at")
    occurred_at = None
    if occurred not in (None, ""):
        try:
            occurred_at = datetime.fromisoformat(str(occurred))
        except ValueError:
            raise _refuse("occurred_at", occurred, f"事发时间 occurred_at 必须是 ISO 8601 时间，收到 {occurred!r}",
                          "invalid_format") from None
    return NewTicket(
        hotline_number=line, subject=text("subject"), facts=text("facts"), location=text("location"),
        occurred_at=occurred_at, caller_name=text("caller_name"), caller_number=text("caller_number"),
        contact_number=text("contact_number"), category_code=optional_code("category_code"),
        region_code=optional_code("region_code"), kind=text("kind", "help"), urgency=text("urgency", "normal"),
        channel=text("channel", "phone"), source=source, confidential=confidential,
        attachments=fields.get("attachments") or [], call_ids=calls,
    )


async def validate(conn: asyncpg.Connection, t: NewTicket) -> None:
    if not t.subject.strip():
        raise _refuse("subject", t.subject, "请填写诉求事项 subject", "missing_field")
    if len(t.subject) > 200:
        raise _refuse("subject", t.subject, f"诉求事项 subject 最多 200 个字，收到 {len(t.subject)} 个字",
                      "out_of_range")
    for key, value, allowed in (("kind", t.kind, KINDS), ("urgency", t.urgency, URGENCIES),
                                ("channel", t.channel, CHANNELS)):
        if value not in allowed:
            raise _refuse(key, value, f"{key} 必须是 {'、'.join(allowed)} 之一，收到 {value!r}", "invalid_choice")
    refs = await conn.fetchrow(
        """SELECT (SELECT active FROM hotlines WHERE number = $1) AS line,
                  (SELECT active FROM ticket_categories WHERE code = $2) AS category,
                  (SELECT active FROM regions WHERE code = $3) AS region""",
        t.hotline_number, t.category_code, t.region_code)
    if refs["line"] is None:
        raise _refuse("hotline_number", t.hotline_number, f"未知的受理线路 {t.hotline_number!r}", "unknown_line")
    if t.category_code is not None:
        active = refs["category"]
        if active is None:
            raise _refuse("category_code", t.category_code, f"未知的诉求分类 {t.category_code!r}",
                          "unknown_category")
        if not active:
            raise _refuse("category_code", t.category_code, f"诉求分类 {t.category_code!r} 已停用",
                          "inactive_category")
    if t.region_code is not None and not refs["region"]:
        raise _refuse("region_code", t.region_code, f"未知或已停用的区划代码 {t.region_code!r}", "unknown_region")
    t.attachments = check_attachments(t.attachments)
    for call_id in t.call_ids:
        if not await conn.fetchval("SELECT true FROM calls WHERE id = $1", call_id):
            raise _refuse("call_ids", call_id, f"来电 {call_id} 不存在", "unknown_call")


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



async def open_ticket(
    conn: asyncpg.Connection,
    fields: Mapping[str, Any],
    actor: User,
    *,
    source: str,
    calendars: CalendarStore | None = None,
    files: ConfigFiles | None = None,
    call_id: int | None = None,
) -> int:
    """The intake behind every route: a ticket from a request's fields (see
    :func:`ticket_from_fields`), dispatched or closed at once if ``fields`` carries a
    ``dispatch`` or ``close_direct`` object, all in one transaction.

    With ``call_id`` the line, the caller's number and the call link come from the
    call record, never from the request (the browser only holds the masked number)."""
    for step in FIRST_STEPS:
        if fields.get(step) is not None and not isinstance(fields[step], dict):
            raise _refuse(step, fields[step], f"{step} 必须是对象，收到 {fields[step]!r}", "invalid_type")
    if call_id is not None:
        call = await conn.fetchrow("SELECT hotline_number, caller_number FROM calls WHERE id = $1", call_id)
        if call is None:
            raise NotFound(f"来电 {call_id} 不存在", field="id", value=call_id)
        fields = {**fields, "hotline_number": call["hotline_number"], "caller_number": call["caller_number"],
                  "call_ids": [call_id], "channel": "phone", "attachments": []}
    new = ticket_from_fields(fields, source=source)
    async with transaction(conn):
        ticket_id = await create_ticket(conn, new, actor_id=actor.id, actor_name=actor.display_name)
        for step in FIRST_STEPS:
            if fields.get(step) is not None:
                await apply(conn, ticket_id, step, actor, fields[step], calendars=calendars, files=files)
                break
        return ticket_id
