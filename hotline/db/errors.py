"""The one answer to "is the database unavailable?" (as opposed to a bug or bad data):
the call flows fall back to the journal on it, the workers wait and retry, and the web
answers 503 with ``{"error": {"code": "database", ...}}`` instead of a 500."""

from __future__ import annotations

import asyncpg

#: SQLSTATE classes meaning the server is not there for us right now: 08 connection
#: exception, 57 operator intervention (shutdown, restart: "cannot connect now"),
#: 53 insufficient resources (too many connections); 55000 "not accepting connections"
_UNAVAILABLE_CLASSES = ("08", "57", "53")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached or is restarting."""
    if isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                        ConnectionError)):
        return True
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True  # a connection left mid-protocol by a terminated backend
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state[:2] in _UNAVAILABLE_CLASSES or state == "55000"
    return False
