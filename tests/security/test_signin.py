"""Finding 1: sign-in under hostile input (size, content type, parallel guessing,
argon2 on the event loop, forwarded addresses)."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from security_support import client_with
from support import TEST_PASSWORD

from hotline.auth import create_user
from hotline.auth import users as auth_users
from hotline.auth.sessions import MAX_FAILURES_PER_USER
from hotline.config import load_settings
from hotline.errors import ConfigError

LOGIN = "/api/v1/auth/login"


class _Hasher:
    """The real argon2 hasher with ``verify`` replaced (the real one's attributes are read-only)."""

    def __init__(self, real, verify) -> None:
        self._real, self.verify = real, verify

    def __getattr__(self, name: str):
        return getattr(self._real, name)


async def test_a_kilobytes_long_username_is_refused_as_bad_input_not_a_server_error(client, pool) -> None:
    resp = await client.post(LOGIN, json={"username": "x" * 3000, "password": "whatever-password"})
    assert resp.status == 400
    assert (await resp.json())["error"]["field"] == "username"
    assert await pool.fetchval("SELECT count(*) FROM login_failures WHERE length(username) > 64") == 0


async def test_a_login_body_that_is_not_json_is_refused_with_415(client) -> None:
    resp = await client.post(LOGIN, data="username=admin&password=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_a_huge_login_body_is_refused_with_413_before_parsing(client) -> None:
    resp = await client.post(LOGIN, data=b'{"username": "a", "password": "' + b"p" * 200_000 + b'"}',
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413


async def test_parallel_wrong_passwords_cannot_all_pass_the_throttle(client, pool) -> None:
    await create_user(pool, "victim", TEST_PASSWORD, ["agent"])
    attempts = [client.post(LOGIN, json={"username": "victim", "password": f"guess-number-{i}"})
                for i in range(30)]
    statuses = [r.status for r in await asyncio.gather(*attempts)]
    assert statuses.count(401) <= MAX_FAILURES_PER_USER, statuses
    assert set(statuses) <= {401, 429, 503}
    checked = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'sign_in_failed'")
    assert checked == statuses.count(401)  # every password checked was a counted, audited failure


async def test_password_hashes_are_verified_off_the_event_loop(client, pool, monkeypatch) -> None:
    await create_user(pool, "someone", TEST_PASSWORD, ["agent"])
    threads: list[int] = []
    real = auth_users._hasher.verify

    def spy(digest: str, password: str) -> bool:
        threads.append(threading.get_ident())
        return real(digest, password)

    monkeypatch.setattr(auth_users, "_hasher", _Hasher(auth_users._hasher, spy))
    assert (await client.post(LOGIN, json={"username": "someone", "password": TEST_PASSWORD})).status == 200
    assert threads and threading.get_ident() not in threads


async def test_sign_ins_beyond_the_concurrency_bound_are_answered_busy_at_once(runtime, pool, monkeypatch) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)
    real = auth_users._hasher.verify

    def slow(digest: str, password: str) -> bool:
        started.release()
        release.wait(30)
        return real(digest, password)

    monkeypatch.setattr(auth_users, "_hasher", _Hasher(auth_users._hasher, slow))
    async with client_with(runtime, signin_concurrency=2, signin_backlog=1) as c:
        attempts = [asyncio.ensure_future(c.post(LOGIN, json={"username": f"nobody{i}", "password": "x" * 12}))
                    for i in range(8)]
        done, _ = await asyncio.wait(attempts, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        busy = [t.result() for t in done]
        assert busy and all(r.status == 503 for r in busy)
        release.set()
        statuses = [r.status for r in await asyncio.gather(*attempts)]
    assert statuses.count(401) == 3 and statuses.count(503) == 5, statuses


async def test_forwarded_for_is_trusted_only_from_configured_proxies(runtime, pool) -> None:
    body = {"username": "ghost", "password": "wrong-password-1"}
    headers = {"X-Forwarded-For": "203.0.113.9"}
    async with client_with(runtime) as c:  # no proxies configured: the header is the client's claim
        await c.post(LOGIN, json=body, headers=headers)
    async with client_with(runtime, trusted_proxies=("127.0.0.1/32", "::1")) as c:
        await c.post(LOGIN, json=body, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
    rows = [r["remote_addr"] for r in await pool.fetch("SELECT remote_addr FROM login_failures ORDER BY at, id")]
    assert rows[0] in ("127.0.0.1", "::1")
    assert rows[1] == "203.0.113.9"  # the address the trusted proxy saw, not what the client wrote first


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text('[web]\ntrusted_proxies = ["10.0.0.0/8", "proxy.example"]\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    assert err.value.field == "web.trusted_proxies" and "proxy.example" in err.value.message


async def test_password_hashing_threads_yield_the_cpu_to_call_routing() -> None:
    """argon2 runs in threads at the lowest scheduling priority: a sign-in storm gets the
    CPU the event loop (FastAGI call routing) does not need, not a fair share of it."""
    from hotline.auth.users import HASHING_NICE, PasswordChecker

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # 0, or what `nice` gave the run
    checker = PasswordChecker(concurrency=1, backlog=0)
    try:
        seen = await asyncio.get_running_loop().run_in_executor(
            checker._executor, lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert seen == HASHING_NICE == 19
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the loop's thread keeps its own
    finally:
        checker.close()
