"""What a ticket points at: its calls (``ticket_calls`` and the call's own link) and
its attachments (references to stored files, never the files)."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.calls import store
from hotline.errors import ValidationError


def check_attachments(items: Any) -> list[dict[str, Any]]:
    """Attachments as ``[{name, ref, type}]`` (lengths capped); a refusal names the item."""
    if not isinstance(items, list):
        raise ValidationError(f"附件 attachments 必须是 {{name, ref}} 的列表，收到 {items!r}",
                              field="attachments", value=items)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("ref"), str) or not item["ref"].strip():
            raise ValidationError(f"附件 attachments[{i}] 缺少 ref（文件地址或存储键），收到 {item!r}",
                                  field="attachments", value=item)
        out.append({"name": str(item.get("name") or item["ref"])[:200], "ref": item["ref"][:500],
                    "type": str(item.get("type") or "")[:100]})
    return out


async def link_call(conn: asyncpg.Connection, ticket_id: int, call_id: int) -> None:
    await conn.execute(
        "INSERT INTO ticket_calls (ticket_id, call_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ticket_id, call_id,
    )
    await store.link_ticket(conn, call_id, ticket_id)
