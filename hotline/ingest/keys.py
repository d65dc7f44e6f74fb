"""Ingest sources and their keys.

A key is a secret shared with one sub-centre. It is never stored in the database
(only a fingerprint is, to detect a stale copy) and never committed: each web node
reads it from ``HOTLINE_INGEST_KEY_<CODE>`` (code upper-cased, ``-`` → ``_``) or
from ``<data_dir>/ingest-keys/<code>.key`` (mode 0600), which ``hotline ingest
add-source`` / ``rotate-key`` write.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from hotline.config import Settings, read_secret
from hotline.errors import Conflict, NotFound, ValidationError

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Source:
    code: str
    name: str
    hotline_numbers: tuple[str, ...]
    key_fingerprint: str | None
    rate_per_minute: int
    active: bool
    key_rotated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping) -> Source:
        return cls(
            code=row["code"], name=row["name"], hotline_numbers=tuple(row["hotline_numbers"]),
            key_fingerprint=row["key_fingerprint"], rate_per_minute=row["rate_per_minute"],
            active=row["active"], key_rotated_at=row["key_rotated_at"],
        )

    def in_overlap(self, minutes: float, now: datetime) -> bool:
        """Still within ``minutes`` of the last key rotation (the previous key is accepted)."""
        return self.key_rotated_at is not None and now - self.key_rotated_at <= timedelta(minutes=minutes)

    def to_json(self) -> dict:
        return {
            "code": self.code, "name": self.name, "hotline_numbers": list(self.hotline_numbers),
            "key_fingerprint": self.key_fingerprint, "rate_per_minute": self.rate_per_minute,
            "active": self.active,
        }


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def key_dir(settings: Settings) -> Path:
    return settings.data_dir / "ingest-keys"


def env_var(code: str) -> str:
    return "HOTLINE_INGEST_KEY_" + code.upper().replace("-", "_")


def load_key(settings: Settings, code: str, env: Mapping[str, str] | None = None) -> str | None:
    """The key of a source on this node, or None when it has none."""
    secret = read_secret(env_var(code), env)
    if secret:
        return secret
    path = key_dir(settings) / f"{code}.key"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def load_previous_key(settings: Settings, code: str, env: Mapping[str, str] | None = None) -> str | None:
    """The key a source had before its last rotation (``HOTLINE_INGEST_KEY_<CODE>_PREVIOUS``
    or ``<code>.previous.key``): accepted during the overlap, so a sub-centre has time to
    switch without a refused batch."""
    secret = read_secret(env_var(code) + "_PREVIOUS", env)
    if secret:
        return secret
    try:
        return (key_dir(settings) / f"{code}.previous.key").read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _write_key(settings: Settings, code: str, key: str, *, name: str | None = None) -> Path:
    directory = key_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / (name or f"{code}.key")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.replace(tmp, path)
    return path


def _check_code(code: str) -> None:
    if not _CODE_RE.match(code):
        raise ValidationError(
            f"source code must be lower-case letters, digits, - or _ (got {code!r})", field="code"
        )


async def add_source(
    conn: asyncpg.Connection | asyncpg.Pool,
    settings: Settings,
    code: str,
    name: str,
    *,
    hotline_numbers: list[str] | tuple[str, ...] = (),
    rate_per_minute: int = 600,
) -> tuple[Source, str]:
    """Register a source and write its new key under the data directory: ``(source, key)``."""
    _check_code(code)
    for number in hotline_numbers:
        if not await conn.fetchval("SELECT 1 FROM hotlines WHERE number = $1", number):
            raise ValidationError(f"unknown line {number!r}", field="hotline_numbers")
    key = secrets.token_urlsafe(32)
    try:
        row = await conn.fetchrow(
            """INSERT INTO ingest_sources (code, name, hotline_numbers, key_fingerprint, key_rotated_at,
                                           rate_per_minute)
               VALUES ($1, $2, $3, $4, now(), $5) RETURNING *""",
            code, name, list(hotline_numbers), fingerprint(key), rate_per_minute,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"source {code!r} already exists", field="code") from None
    _write_key(settings, code, key)
    return Source.from_row(row), key


async def rotate_key(conn: asyncpg.Connection | asyncpg.Pool, settings: Settings, code: str) -> str:
    """A new key for a source. The old one is kept as the previous key and still accepted
    for ``[ingest] key_overlap_minutes`` after the rotation (copy both files, or set both
    environment variables, on the other web nodes)."""
    old = load_key(settings, code)
    key = secrets.token_urlsafe(32)
    done = await conn.fetchval(
        """UPDATE ingest_sources SET key_fingerprint = $2, key_rotated_at = now(), updated_at = now()
            WHERE code = $1 RETURNING code""",
        code, fingerprint(key),
    )
    if done is None:
        raise NotFound(f"no source {code!r}", field="code")
    if old:
        _write_key(settings, code, old, name=f"{code}.previous.key")
    _write_key(settings, code, key)
    return key


async def get_source(conn: asyncpg.Connection | asyncpg.Pool, code: str) -> Source | None:
    row = await conn.fetchrow("SELECT * FROM ingest_sources WHERE code = $1", code)
    return Source.from_row(row) if row else None


async def list_sources(conn: asyncpg.Connection | asyncpg.Pool) -> list[Source]:
    return [Source.from_row(r) for r in await conn.fetch("SELECT * FROM ingest_sources ORDER BY code")]
