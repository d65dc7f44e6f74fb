"""The audit log: sign-ins, views of unmasked personal data, administrative changes."""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.auth.model import User


async def audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    action: str,
    *,
    user: User | None = None,
    username: str | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO audit_log (user_id, username, action, object_type, object_id, detail, remote_addr)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        user.id if user else None,
        user.username if user else username,
        action,
        object_type,
        None if object_id is None else str(object_id),
        detail or {},
        remote_addr,
    )
