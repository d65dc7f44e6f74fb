"""FastAGI only from the PBX (issue 11, finding 5): a forged ``agent_connect`` from
another host must not attach a call to a seat; refused connections are closed at
once, counted and logged without flooding the log."""

from __future__ import annotations

import logging
import socket

import asyncpg
import pytest
from support import wait_for

from hotline.agi.allow import AllowList
from hotline.agi.peer import run_call, simulate_call
from hotline.agi.server import FastAgiServer
from hotline.calls.context import CallContext


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (a connection to it comes from it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent: only picks the outgoing address
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_default_allows_loopback_and_the_ami_host_only() -> None:
    allow = AllowList.from_settings((), "10.1.2.3")
    assert allow.allows("127.0.0.1") and allow.allows("::1") and allow.allows("::ffff:127.0.0.1")
    assert allow.allows("10.1.2.3")
    assert not allow.allows("10.1.2.4") and not allow.allows("192.0.2.2") and not allow.allows("")
    assert not AllowList.from_settings((), "").allows("10.1.2.3")


def test_configured_hosts_replace_the_default_and_names_are_resolved() -> None:
    allow = AllowList.from_settings(["10.8.0.0/16", "pbx.example"], "10.1.2.3",
                                    resolve=lambda name: ["10.7.0.1"] if name == "pbx.example" else [])
    assert allow.allows("10.8.200.1") and allow.allows("10.7.0.1")
    assert not allow.allows("127.0.0.1") and not allow.allows("10.1.2.3")

    def unresolvable(name: str) -> list[str]:
        raise socket.gaierror("no such host")

    assert AllowList.from_settings(["pbx.invalid"], resolve=unresolvable).networks == ()


def test_refusals_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    allow = AllowList.from_settings((), "", )
    allow.clock = lambda: now[0]
    with caplog.at_level(logging.WARNING, logger="hotline.agi"):
        for _ in range(500):
            allow.refuse("198.51.100.7")
        now[0] += allow.log_interval + 1
        allow.refuse("198.51.100.8")
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and allow.refused == 501
    assert "198.51.100.7" in refusals[0] and "499 more refused" in refusals[1]


async def test_forged_agent_connect_from_another_host_is_refused(runtime, pool: asyncpg.Pool) -> None:
    outside = _non_loopback_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    from hotline.auth import create_user

    agent = await create_user(pool, "agent-8001", "correct-horse-battery", ["agent"])
    await pool.execute("INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', 'PJSIP/8001')", agent.id)
    ctx = CallContext.for_runtime(runtime)
    server = FastAgiServer(ctx, runtime.settings.agi)  # the default allow-list: loopback (+ AMI host)
    await server.start("0.0.0.0", 0)  # noqa: S104 (reachable from the non-loopback address)
    assert server.port is not None
    try:
        call = await simulate_call("127.0.0.1", server.port, dialled="12345", caller="13812345678", hangup=False)
        assert call.route == "platform"
        # an attacker on the network claims PJSIP/8001 answered the call
        forged = await run_call(outside, server.port, "agent_connect",
                                {"agi_channel": "PJSIP/8001-00000001", "agi_uniqueid": "forged-1"}, [call.uid],
                                timeout=5.0)
        assert forged.commands == [] and forged.variables == {}  # closed before anything was read or set
        await wait_for(lambda: server.active == 0, what="the refused session closed")
        row = await pool.fetchrow("SELECT agent_id, answered_at FROM calls WHERE call_uid = $1", call.uid)
        assert row["agent_id"] is None and row["answered_at"] is None
        assert server.allow.refused == 1
        assert server.outcomes["refused"] == 1
        # a forged hangup is refused the same way: the call stays live
        await run_call(outside, server.port, "hangup", {"agi_uniqueid": call.uid}, [call.uid, "", "", "16", ""],
                       timeout=5.0)
        assert await pool.fetchval("SELECT ended_at FROM calls WHERE call_uid = $1", call.uid) is None
        # the PBX on loopback is still served
        real = await run_call("127.0.0.1", server.port, "agent_connect",
                              {"agi_channel": "PJSIP/8001-00000002", "agi_uniqueid": "real-1"}, [call.uid])
        assert real.outcome == "closed"
        row = await pool.fetchrow("SELECT agent_id, answered_at FROM calls WHERE call_uid = $1", call.uid)
        assert row["agent_id"] == agent.id and row["answered_at"] is not None
    finally:
        await server.stop(grace=1.0)
