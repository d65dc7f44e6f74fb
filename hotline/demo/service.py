"""The demo service (``hotline serve --demo``): role "workers", present only in
demo mode. At start it (re)creates the demo users with fresh generated passwords
and prints them, seeds a day of calls and tickets once per day, then keeps a
trickle of simulated calls going so the consoles move."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from hotline.auth import audit, create_user, get_user, update_user
from hotline.calls.members import SeatPbx
from hotline.calls.store import apply_op, make_entry
from hotline.config import PROJECT_ROOT, ConfigFiles
from hotline.console import seats
from hotline.db import transaction
from hotline.demo import data
from hotline.demo.pbx import PbxTraffic, attached_pbx, phone_of
from hotline.demo.traffic import AgiDriver, DirectDriver, Driver, Traffic, agi_reachable
from hotline.errors import ConfigError
from hotline.kb.importer import import_path
from hotline.registry import Mode, Registry
from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.telephony.pbx import seat_pbx
from hotline.tickets.intake import NewTicket, create_ticket
from hotline.tickets.workflow import apply as apply_action

log = logging.getLogger("hotline.demo")


async def ensure_users(
    pool: asyncpg.Pool, registry: Registry, *, phone: Callable[[str], str] | None = None,
    agent_skills: Sequence[str] = (), pbx: SeatPbx | None = None,
) -> dict[str, tuple[int, str]]:
    """Create or reset the demo users; returns username → (id, new password). Seats get
    their phones the way an admin gives them (``set_phone``: validated, audited, and with
    ``pbx`` the membership of a signed-on seat follows); ``phone`` maps a demo seat's
    interface to the phone it really has (the sandbox PBX's)."""
    out: dict[str, tuple[int, str]] = {}
    async with transaction(pool) as conn:  # the audit row commits with the reset it records
        for u in data.USERS:
            password = secrets.token_urlsafe(9)
            user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", u.username)
            if user_id is None:
                user = await create_user(conn, u.username, password, u.roles, display_name=u.display_name,
                                         **u.extra)
                user_id = user.id
            else:
                await update_user(conn, user_id, {"password": password, "active": True, "roles": list(u.roles)})
            out[u.username] = (user_id, password)
        await audit(conn, "demo_users_reset", username="demo", detail={"users": sorted(out)})
    for u in data.USERS:
        if u.interface:  # each phone change is its own audited transaction (and may move PBX members)
            user_id = out[u.username][0]
            skills = set(await pool.fetchval("SELECT skills FROM seats WHERE user_id = $1", user_id) or ())
            if "agent" in u.roles:  # the demo's agents answer these lines' skills
                skills |= set(agent_skills)
            await seats.set_phone(pool, registry, user_id, interface=phone(u.interface) if phone else u.interface,
                                  skills=sorted(skills), by_name="demo", pbx=pbx)
    return out


#: set to run the demo against a database that has other users (never in production)
FORCE_ENV = "HOTLINE_DEMO_FORCE"


async def refuse_real_users(pool: asyncpg.Pool) -> None:
    """Demo mode resets the demo users' passwords, seeds calls and tickets and simulates
    traffic: it refuses a database that has anyone but the demo's people in it."""
    if os.environ.get(FORCE_ENV, "").lower() in ("1", "true", "yes"):
        return
    names = [u.username for u in data.USERS]
    others = await pool.fetchval("SELECT count(*) FROM users WHERE NOT (username = ANY($1::text[]))", names)
    if others:
        raise ConfigError(
            f"演示模式拒绝在有 {others} 个真实用户的数据库上运行：demo mode seeds users, calls and tickets; "
            f"run it on its own data directory (HOTLINE_DATA_DIR), or set {FORCE_ENV}=1 if this database is "
            "a disposable copy", field="demo")


async def deactivate_users(pool: asyncpg.Pool) -> None:
    """When the demo stops its accounts are deactivated (their sessions end); the next
    demo start activates them again with new passwords."""
    async with transaction(pool) as conn:  # the audit row commits with the change
        for u in data.USERS:
            user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1 AND active", u.username)
            if user_id is not None:
                await update_user(conn, user_id, {"active": False})
        await audit(conn, "demo_users_deactivated", username="demo",
                    detail={"users": [u.username for u in data.USERS]})


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"


async def seed_day(runtime: Runtime, agents: list[int], *, rng: random.Random,
                   now: datetime | None = None) -> int:
    """A day of calls answered by ``agents`` (and tickets for some of them), once per
    local day, all of them within that day (so "today" figures never come out empty
    just after midnight). Returns the number of calls made."""
    pool = runtime.pool
    tz = runtime.settings.tz
    now = (now or datetime.now(tz)).astimezone(tz)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if await pool.fetchval("SELECT count(*) FROM calls WHERE call_uid LIKE 'demo-day-%' AND started_at >= $1", day):
        return 0
    start = max(day + timedelta(hours=8), now - timedelta(hours=10))
    if start >= now:  # before office hours: the small hours since midnight
        start = max(day, now - timedelta(hours=2))
    now = max(now, start + timedelta(minutes=1))
    lines = list(data.LINE_WEIGHTS)
    weights = list(data.LINE_WEIGHTS.values())
    callers = [_mobile(rng) for _ in range(60)]
    count = max(30, int((now - start).total_seconds() / 300))
    made = 0
    async with pool.acquire() as conn:
        for i in range(count):
            started = start + (now - start) * (i / count)
            line = rng.choices(lines, weights)[0]
            caller = rng.choice(callers)
            wait = rng.choice([3, 5, 6, 8, 9, 11, 12, 14, 18, 25, 40])
            abandoned = rng.random() < 0.05
            talk = rng.randrange(60, 420)
            agent = rng.choice(agents)
            hl = runtime.registry.get(line) or runtime.registry.platform
            uid = f"demo-day-{uuid.uuid4().hex}"
            answered = started + timedelta(seconds=wait)
            ops: list[tuple[str, dict[str, Any]]] = [
                ("start", {"source": "simulate", "hotline_number": hl.number, "caller_number": caller,
                           "caller_kind": "mobile", "route": hl.mode.value, "queue": hl.queue, "skill": hl.skill,
                           "state": "queued", "started_at": started.isoformat(),
                           "decisions": [{"step": "demo", "note": "seeded call"}]}),
                ("queue_join", {"at": started.isoformat(), "queue": hl.queue}),
            ]
            if not abandoned:
                ops.append(("answer", {"at": answered.isoformat(), "agent_id": agent,
                                       "answered_by": f"demo/{agent}"}))
            ops.append(("end", {"at": (answered + timedelta(seconds=talk) if not abandoned else answered).isoformat(),
                                "cause": "16"}))
            async with conn.transaction():
                for op, op_data in ops:  # the call store's operations, as the flows write them
                    call_id = await apply_op(conn, make_entry(op, uid, op_data), live=False)
            made += 1
            if not abandoned and call_id is not None and rng.random() < 0.35:
                matters = [m for m in data.MATTERS if m[0] == line] or list(data.MATTERS)
                await _make_ticket(conn, runtime, call_id, line, caller, rng.choice(matters), agent, started, rng)
    return made


async def _make_ticket(conn: asyncpg.Connection, runtime: Runtime, call_id: int, line: str, caller: str,
                       matter: tuple[str, str, str, str, str], agent_id: int, at: datetime,
                       rng: random.Random) -> None:
    """A demo ticket on a seeded call, through the tickets package's intake and workflow."""
    _, kind, subject, facts, unit = matter
    ticket_id = await create_ticket(conn, NewTicket(
        hotline_number=line, subject=subject, facts=facts, location=rng.choice(data.LOCATIONS),
        caller_name=rng.choice(data.NAMES), caller_number=caller, kind=kind, call_ids=[call_id],
    ), actor_id=agent_id)  # links the call (calls.ticket_id) itself
    try:
        await _workflow(conn, ticket_id, kind, unit, agent_id, rng, runtime.files)
    except Exception:  # a refused demo step leaves the ticket as opened; the seed goes on
        log.debug("demo: workflow step on ticket %s refused", ticket_id, exc_info=True)


async def _workflow(conn: asyncpg.Connection, ticket_id: int, kind: str, unit: str, agent_id: int,
                    rng: random.Random, files: ConfigFiles) -> None:
    agent = await get_user(conn, agent_id)
    if kind == "enquiry" and rng.random() < 0.7:
        await apply_action(conn, ticket_id, "close_direct", actor=agent, files=files,
                           data={"answer": "已按知识库答复市民，市民表示清楚。"})
    else:
        await apply_action(conn, ticket_id, "dispatch", actor=agent, data={"unit_code": unit}, files=files)


class DemoService:
    name = "demo"
    role = "workers"
    order = 90

    def __init__(self, runtime: Runtime, *, use_agi: bool = True) -> None:
        self.runtime = runtime
        self.use_agi = use_agi
        self.driver_name = "direct"
        self.task: asyncio.Task[None] | None = None
        self.traffic: Traffic | PbxTraffic | None = None
        self.users: dict[str, tuple[int, str]] = {}
        self.seeded = 0

    async def start(self) -> None:
        await refuse_real_users(self.runtime.pool)
        rng = random.Random()
        pbx = attached_pbx(self.runtime.settings) if self.use_agi else None
        dual_skills = sorted({line.skill for line in self.runtime.registry if line.mode is Mode.DUAL})
        self.users = await ensure_users(
            self.runtime.pool, self.runtime.registry, phone=phone_of if pbx is not None else None,
            agent_skills=dual_skills if pbx is not None else (), pbx=seat_pbx(self.runtime) if pbx else None)
        agents = [self.users[u.username][0] for u in data.USERS if "agent" in u.roles]
        self.seeded = await seed_day(self.runtime, agents, rng=rng)
        await self._import_knowledge()
        simulated = [self.users[u.username][0] for u in data.USERS if u.simulated]
        agi = self.runtime.settings.agi
        if pbx is not None:  # a real Asterisk routes the demo's calls
            traffic: Traffic | PbxTraffic = PbxTraffic(self.runtime, pbx, simulated_agents=simulated, rng=rng)
            self.driver_name = f"a real Asterisk ({pbx.root}, AMI 127.0.0.1:{pbx.ami_port})"
        else:
            driver: Driver = DirectDriver(self.runtime)
            if self.use_agi and await agi_reachable(agi.host, agi.port):
                driver = AgiDriver(self.runtime, agi.host, agi.port)
                self.driver_name = f"FastAGI {agi.host}:{agi.port}"
            traffic = Traffic(self.runtime, driver, simulated_agents=simulated, rng=rng)
        self.traffic = traffic
        self.task = asyncio.create_task(traffic.run(), name="demo-traffic")
        print("演示模式 / demo mode — demo users (passwords are new at every start):", flush=True)
        for u in data.USERS:
            print(f"  {u.username:<16} {self.users[u.username][1]:<14} {'/'.join(u.roles):<11} {u.display_name}",
                  flush=True)

    async def _import_knowledge(self) -> None:
        """The seed articles, when the knowledge base is still empty."""
        if await self.runtime.pool.fetchval("SELECT count(*) FROM kb_articles"):
            return
        try:
            await import_path(self.runtime.pool, PROJECT_ROOT / "knowledge_base", partial=True)
        except Exception:
            log.exception("demo: importing the seed knowledge base failed")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self.users:  # demo accounts (an admin among them) do not outlive the demo
            await deactivate_users(self.runtime.pool)

    def describe(self) -> str:
        return (f"demo: {len(self.users)} demo users, {self.seeded} calls seeded today, "
                f"a citizen's call every ~20 s via {self.driver_name}")


def create_service(runtime: Runtime, options: NodeOptions) -> DemoService | None:
    if not options.demo:
        return None  # never in production mode
    return DemoService(runtime, use_agi=options.agi)
