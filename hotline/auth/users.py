"""Users and passwords (argon2id through ``argon2-cffi``)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hotline.auth.model import ROLES, User
from hotline.errors import Conflict, NotFound, Unavailable, ValidationError

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 10
#: longest username (the users table's check) and password a sign-in may present
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 1024


class SignInBusy(Unavailable):
    code = "sign_in_busy"


#: scheduling priority of the password-hashing threads (Linux nice, per thread): a storm
#: of sign-ins takes the CPU the event loop routing calls does not need, not more
HASHING_NICE = 19


def _yield_to_calls() -> None:
    """Lower this worker thread's priority (Linux schedules threads one by one)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted: the bound still holds
        pass


class PasswordChecker:
    """Verifies password hashes in worker threads, never on the event loop that also
    routes calls: ``concurrency`` at once, ``backlog`` waiting; past both a sign-in is
    refused at once (:class:`SignInBusy`) rather than queued without bound."""

    def __init__(self, concurrency: int = 4, backlog: int = 16) -> None:
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2",
                                            initializer=_yield_to_calls)
        self._capacity = concurrency + backlog
        self._admitted = 0

    @property
    def full(self) -> bool:
        """No room for another verification now (a sign-in can be refused before any work)."""
        return self._admitted >= self._capacity

    async def verify(self, digest: str, password: str) -> bool:
        if self.full:
            raise SignInBusy("登录请求过多，请稍后再试 (too many sign-ins in progress; retry shortly)",
                             retry_after=1)
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _verify, digest, password)
        finally:
            self._admitted -= 1

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, _hasher.hash, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _verify(digest: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(digest, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
_COLUMNS = "id, username, display_name, roles, unit_code, hotline_number, active"


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"密码至少 {MIN_PASSWORD_LENGTH} 个字符", field="password"
        )
    return _hasher.hash(password)


def _check_roles(roles: Iterable[str]) -> list[str]:
    roles = sorted(set(roles))
    if not roles:
        raise ValidationError("至少要有一个角色", field="roles")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValidationError(
            f"未知的角色 {'、'.join(unknown)}；可选角色：{'、'.join(ROLES)}", field="roles", value=unknown,
            code="invalid_choice"
        )
    return roles


async def create_user(
    conn: asyncpg.Connection | asyncpg.Pool,
    username: str,
    password: str,
    roles: Iterable[str],
    *,
    display_name: str | None = None,
    unit_code: str | None = None,
    hotline_number: str | None = None,
) -> User:
    role_list = _check_roles(roles)
    if "liaison" in role_list and not unit_code:
        raise ValidationError("单位联络员必须指定所属单位", field="unit_code")
    digest = hash_password(password)
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO users (username, display_name, password_hash, roles, unit_code, hotline_number)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}""",  # noqa: S608
            username,
            display_name or username,
            digest,
            role_list,
            unit_code,
            hotline_number,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"用户名 {username!r} 已被占用", field="username") from None
    except asyncpg.CheckViolationError:
        raise ValidationError(
            f"用户名 {username!r} 须为 2-64 位字母、数字或 . _ @ -", field="username", value=username,
            code="invalid_format"
        ) from None
    except asyncpg.ForeignKeyViolationError as exc:
        field = "unit_code" if "unit_code" in str(exc) else "hotline_number"
        value = unit_code if field == "unit_code" else hotline_number
        raise ValidationError(f"未知的 {field}：{value!r}", field=field) from None
    assert row is not None
    return User.from_row(row)


async def authenticate(
    conn: asyncpg.Connection | asyncpg.Pool, username: str, password: str, *, checker: PasswordChecker | None = None
) -> User | None:
    """The user when the password is right (hash verified by ``checker``, off the event
    loop; without one, in the default executor). Raises :class:`SignInBusy` when the
    checker is full."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = $1",  # noqa: S608
        username,
    )
    digest = row["password_hash"] if row else _DUMMY_HASH
    if checker is not None:
        ok = await checker.verify(digest, password)
    else:
        ok = await asyncio.to_thread(_verify, digest, password)
    if not ok or row is None or not row["active"]:
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        new_hash = await checker.hash(password) if checker else await asyncio.to_thread(_hasher.hash, password)
        await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", row["id"], new_hash)
    return User.from_row(row)


async def get_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> User:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)  # noqa: S608
    if row is None:
        raise NotFound(f"没有编号为 {user_id} 的用户", field="id")
    return User.from_row(row)


async def list_users(conn: asyncpg.Connection | asyncpg.Pool) -> list[User]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM users ORDER BY username")  # noqa: S608
    return [User.from_row(r) for r in rows]


async def update_user(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: int, changes: dict[str, Any]
) -> User:
    """Change roles, display name, unit, line, active flag or password. Deactivating
    a user or changing their password ends their sessions."""
    allowed = {"display_name", "roles", "unit_code", "hotline_number", "active", "password"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"不能修改 {sorted(unknown)}", field=sorted(unknown)[0])
    sets: list[str] = []
    args: list[Any] = [user_id]
    for key, value in changes.items():
        if key == "roles":
            value = _check_roles(value)
        if key == "password":
            key, value = "password_hash", hash_password(str(value))
        if key == "active" and not isinstance(value, bool):
            raise ValidationError(f"active 必须是 true 或 false，收到 {value!r}", field="active")
        args.append(value)
        sets.append(f"{key} = ${len(args)}")
    if not sets:
        return await get_user(conn, user_id)
    try:
        row = await conn.fetchrow(
            f"UPDATE users SET {', '.join(sets)}, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",  # noqa: S608
            *args,
        )
    except asyncpg.CheckViolationError:
        raise ValidationError("单位联络员必须指定所属单位", field="unit_code") from None
    except asyncpg.ForeignKeyViolationError:
        raise ValidationError("未知的单位或热线", field="unit_code") from None
    if row is None:
        raise NotFound(f"没有编号为 {user_id} 的用户", field="id")
    if "password" in changes or changes.get("active") is False:
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    return User.from_row(row)
