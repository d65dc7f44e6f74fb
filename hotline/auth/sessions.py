"""Server-side sessions: the cookie carries a random token, the database keeps only
its SHA-256, so a leaked table cannot be replayed. Idle and absolute expiry are
both enforced in SQL."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from hotline.auth.model import User

# Sign-in throttling: failures counted over a sliding window.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDR = 20


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    token_hash: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    user: User,
    *,
    absolute: timedelta,
    remote_addr: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, str]:
    """Return ``(cookie token, csrf token)``."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    await conn.execute(
        """INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, remote_addr, user_agent)
           VALUES ($1, $2, $3, now() + $4::interval, $5, $6)""",
        _digest(token),
        user.id,
        csrf,
        absolute,
        remote_addr,
        (user_agent or "")[:300],
    )
    return token, csrf


async def load_session(
    conn: asyncpg.Connection | asyncpg.Pool, token: str, *, idle: timedelta
) -> Session | None:
    row = await conn.fetchrow(
        """UPDATE sessions s SET last_seen_at = now()
             FROM users u
            WHERE s.token_hash = $1 AND u.id = s.user_id AND u.active
              AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval
        RETURNING s.csrf_token, s.token_hash, u.id, u.username, u.display_name, u.roles,
                  u.unit_code, u.hotline_number, u.active""",
        _digest(token),
        idle,
    )
    if row is None:
        return None
    return Session(User.from_row(row), row["csrf_token"], row["token_hash"])


async def end_session(conn: asyncpg.Connection | asyncpg.Pool, token_hash: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)


async def end_all_sessions(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> int:
    result = await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    return int(result.split()[-1])


async def purge_expired(conn: asyncpg.Connection | asyncpg.Pool, *, idle: timedelta) -> int:
    result = await conn.execute(
        "DELETE FROM sessions WHERE expires_at <= now() OR last_seen_at <= now() - $1::interval",
        idle,
    )
    await conn.execute("DELETE FROM login_failures WHERE at < now() - $1::interval", FAILURE_WINDOW)
    return int(result.split()[-1])


async def record_failure(
    conn: asyncpg.Connection | asyncpg.Pool, username: str, remote_addr: str | None
) -> None:
    await conn.execute(
        "INSERT INTO login_failures (username, remote_addr) VALUES ($1, $2)", username, remote_addr
    )


async def record_attempt(
    conn: asyncpg.Connection | asyncpg.Pool, username: str, remote_addr: str | None
) -> tuple[int, bool]:
    """Count a sign-in attempt as a failure *before* its password is checked, then say
    whether it is over the limit: ``(failure id, throttled)``. Recorded first, parallel
    attempts cannot all pass the throttle (each counts the others that committed before
    it); a successful sign-in clears the user's failures, a refused one forgets its own
    (throttled or not checked) with :func:`forget_attempt`."""
    attempt_id = await conn.fetchval(
        "INSERT INTO login_failures (username, remote_addr) VALUES ($1, $2) RETURNING id", username, remote_addr
    )
    # each count stops at its limit and walks its own index: a storm of failures from
    # many addresses must not make every attempt scan the whole window
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM (SELECT 1 FROM login_failures
                    WHERE username = $1 AND at > now() - $3::interval AND id <> $4 LIMIT $5) u) AS by_user,
                  (SELECT count(*) FROM (SELECT 1 FROM login_failures
                    WHERE remote_addr = $2 AND at > now() - $3::interval AND id <> $4 LIMIT $6) a) AS by_addr""",
        username, remote_addr, FAILURE_WINDOW, attempt_id, MAX_FAILURES_PER_USER, MAX_FAILURES_PER_ADDR,
    )
    assert row is not None
    throttled = row["by_user"] >= MAX_FAILURES_PER_USER or row["by_addr"] >= MAX_FAILURES_PER_ADDR
    return int(attempt_id), throttled


async def forget_attempt(conn: asyncpg.Connection | asyncpg.Pool, attempt_id: int) -> None:
    await conn.execute("DELETE FROM login_failures WHERE id = $1", attempt_id)


async def clear_failures(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE username = $1", username)


async def is_throttled(
    conn: asyncpg.Connection | asyncpg.Pool, username: str, remote_addr: str | None
) -> bool:
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE username = $1) AS by_user,
                  count(*) FILTER (WHERE remote_addr = $2) AS by_addr
             FROM login_failures WHERE at > now() - $3::interval""",
        username,
        remote_addr,
        FAILURE_WINDOW,
    )
    assert row is not None
    return row["by_user"] >= MAX_FAILURES_PER_USER or row["by_addr"] >= MAX_FAILURES_PER_ADDR
