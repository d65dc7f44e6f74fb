#!/usr/bin/env python3
"""CPU per answered call on a real Asterisk: our side (the backend process + every
PostgreSQL process of its embedded server) against Asterisk's own, measured side by
side in one run.

    .venv/bin/python bench/pbx_bench.py --calls 300 --agents 20 --concurrency 20 --talk 1

What runs (everything a production node does per call):

* a private real Asterisk 22 (``hotline/telephony/sandbox.py``) with the dialplan and
  queues ``hotline dialplan`` generates, citizens and agent phones simulated with
  Local channels (no SIP, no RTP: see "what is not measured" in docs/bench/pbx.md);
* the real backend as its own process, ``hotline serve`` (all roles: FastAGI, the
  Asterisk records followers for Master.csv and queue_log, web, scheduler,
  workers) with an embedded PostgreSQL in a temporary data dir, migrated with
  ``hotline migrate`` + ``hotline hotlines sync``, AMI and CDR settings from a
  config file pointing at the sandbox;
* N agents: ``users`` + ``seats`` rows (state ready, interface ``Local/80NN@agents``)
  and ``queue add member Local/80NN@agents to hotline-12345``; each answers and talks
  ``--talk`` seconds;
* M calls over the platform and merged lines placed through one AMI connection
  (``Originate`` of ``Local/<caller>*<line>@pstn``), at most ``--concurrency`` in
  flight; a call is done when the backend's record has ``ended_at``.

CPU is user+sys from ``/proc/<pid>/stat`` (all threads) of: the backend process and
its descendants; the postmaster including ``cutime/cstime`` (its reaped children)
plus every live child (so backends that exit during the run are counted); the
Asterisk daemon (its threads and reaped children). The bench's own PostgreSQL
connection (pacing polls, checks) is subtracted exactly (its backend's CPU is read
before it closes). The measured window starts after ``--warmup`` calls and ends
when every call is ended *and* both follower offsets have reached the end of
Master.csv / queue_log (the records are imported), so per-call work done after the
hang-up is inside it. An idle window before the run gives each process's
background rate (scheduler, follower polls, queue timers); figures are printed
gross and net of it.

Also printed, to say where our side's CPU goes: PostgreSQL's CPU by process for the
run and for the idle window (connections are named by node part: ``hotline/agi``,
``hotline/telephony``, ``hotline/ingest``, ``hotline/events``; ``hotline`` is the
web/scheduler pool), and the rows each table got per answered call (inserted,
updated, of which HOT, deleted) with its index count. ``--sql FILE`` runs a schema
change first (drop an index, disable a trigger) for an ablation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if "--tree" in sys.argv:  # measure a frozen copy of the code (see --tree); must precede any hotline import
    if not os.environ.get("HOTLINE_ASTERISK") and (ROOT.parent / "shared" / "asterisk").is_dir():
        os.environ["HOTLINE_ASTERISK"] = str(ROOT.parent / "shared" / "asterisk")
    ROOT = Path(sys.argv[sys.argv.index("--tree") + 1]).resolve()
sys.path.insert(0, str(ROOT))

from hotline.telephony.sandbox import AsteriskSandbox, find_asterisk, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
VENV_BIN = Path(sys.executable).parent
#: the CLI, run from ROOT's code (PYTHONPATH below), not from wherever the venv's editable install points
HOTLINE = [sys.executable, "-m", "hotline"]


# -- CPU accounting ------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own user+sys, reaped children's user+sys) in seconds; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                kids.setdefault(st[0], []).append(int(name))
    return kids


def tree_cpu(root: int, kids: dict[int, list[int]], exclude: set[int] = frozenset()) -> float:
    """CPU of ``root`` (own + reaped children) + every live descendant (own + reaped)."""
    total = 0.0
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in exclude:
            continue
        st = _stat(pid)
        if st is None:
            continue
        total += st[1] + st[2]
        stack.extend(kids.get(pid, ()))
    return total


class Meter:
    """CPU seconds so far of the three sides."""

    def __init__(self, backend: int, postmaster: int, asterisk: int) -> None:
        self.pids = {"backend": backend, "postgres": postmaster, "asterisk": asterisk}

    def sample(self) -> dict[str, float]:
        kids = _children_map()
        pm = self.pids["postgres"]
        return {
            "backend": tree_cpu(self.pids["backend"], kids, exclude={pm}),
            "postgres": tree_cpu(pm, kids),
            "asterisk": tree_cpu(self.pids["asterisk"], kids),
            "t": time.monotonic(),
        }


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- a minimal AMI client (one connection, no events) --------------------------------

class Ami:
    def __init__(self, port: int, user: str, secret: str) -> None:
        self.port, self.user, self.secret = port, user, secret
        self._n = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        await self.reader.readline()  # banner
        await self.action("Login", Username=self.user, Secret=self.secret, Events="off")

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        self._n += 1
        lines = [f"Action: {name}", f"ActionID: b{self._n}", *(f"{k}: {v}" for k, v in fields.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        while True:  # responses come in order (no events), skip anything else
            block: dict[str, str] = {}
            while True:
                raw = (await self.reader.readline()).decode("utf-8", "replace").rstrip("\r\n")
                if not raw:
                    break
                k, _, v = raw.partition(": ")
                block[k] = v
            if block.get("ActionID") == f"b{self._n}":
                if block.get("Response") != "Success":
                    raise RuntimeError(f"AMI {name}: {block}")
                return block

    async def close(self) -> None:
        try:
            await self.action("Logoff")
        except Exception:
            pass
        self.writer.close()


# -- the run ---------------------------------------------------------------------------

def _config_file(path: Path, sandbox: AsteriskSandbox, follow_interval: float | None,
                 without: set[str] = frozenset()) -> None:
    text = (ROOT / "config" / "hotline.toml").read_text(encoding="utf-8")

    def put(key: str, value: str) -> None:
        nonlocal text
        text, n = re.subn(rf"(?m)^{key}\s*=\s*[^#\n]*", f"{key} = {value} ", text, count=1)
        assert n == 1, key

    put("registry_path", f'"{ROOT / "config" / "hotlines.yaml"}"')
    put("ami_host", '""' if "ami" in without else '"127.0.0.1"')
    put("ami_port", str(sandbox.ami_port))
    put("ami_username", f'"{sandbox.ami_username}"')
    put("cdr_csv", '""' if "records" in without else f'"{sandbox.cdr_csv}"')
    put("queue_log", '""' if "records" in without else f'"{sandbox.queue_log}"')
    put("cdr_timezone", f'"{sandbox.tz}"')
    if follow_interval is not None:
        put("follow_interval", str(follow_interval))
    path.write_text(text, encoding="utf-8")


#: the world on the far side of an IAX2 trunk (``--network iax2``): citizens who dial the
#: hotline numbers through the trunk, and the agents' phones the PBX's queues call back
WORLD_DIALPLAN = """[general]
static = yes
writeprotect = no

[globals]
TALK = 1
MEDIA = 0

; Local/<caller>*<number>@citizens: the ;2 side calls the PBX over the trunk
[citizens]
exten => _X.,1,Set(CALLERID(num)=${CUT(EXTEN,*,1)})
 same => n,Dial(IAX2/pbx/${CUT(EXTEN,*,2)})
 same => n,Hangup()

; the agents' phones: answer, talk TALK seconds (a tone with MEDIA = 1), hang up
[phones]
exten => _X.,1,Answer()
 same => n,ExecIf($["${GLOBAL(MEDIA)}" = "1"]?Playtones(1004))
 same => n,Wait(${GLOBAL(TALK)})
 same => n,Hangup()
"""


def _iax(sandbox: AsteriskSandbox, me: str, port: int, peer: str, peer_port: int, context: str) -> None:
    """chan_iax2 on ``port`` with one friend ``peer`` (G.711 u-law, 20 ms frames). Media
    always flows through this Asterisk (``transfer = no``), as RTP through a PBX that
    does not re-invite; no jitter buffer (nothing a LAN needs)."""
    with (sandbox.etc / "modules.conf").open("a") as fh:
        fh.write("load = chan_iax2.so\n")
    (sandbox.etc / "iax.conf").write_text(
        f"[general]\nbindaddr = 127.0.0.1:{port}\ndisallow = all\nallow = ulaw\n"
        "jitterbuffer = no\ntransfer = no\nrequirecalltoken = no\ntrunk = no\n\n"
        f"[{peer}]\ntype = friend\nusername = {me}\nhost = 127.0.0.1\nport = {peer_port}\ncontext = {context}\n"
        "transfer = no\nrequirecalltoken = no\ndisallow = all\nallow = ulaw\n")


def _by_process(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                total: float) -> dict[str, float]:
    """CPU of each PostgreSQL process between two samples, labelled by its
    application_name (or backend type); the rest of ``total`` is processes that exited
    in between and the postmaster itself."""
    groups: dict[str, float] = {}
    for pid, (kind, cpu) in after.items():
        label = f"{kind} (pid {pid})" if kind != "?" else "?"
        groups[label] = groups.get(label, 0.0) + cpu - before.get(pid, (kind, 0.0))[1]
    groups["exited in between / postmaster"] = total - sum(groups.values())
    return groups


def _postmaster(pgdata: Path) -> tuple[int, str, int]:
    """(pid, socket dir, port) from postmaster.pid."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return int(lines[0]), lines[4], int(lines[3])


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


async def run(args: argparse.Namespace) -> int:
    import asyncpg

    from hotline.calls.dialplan import DialplanOptions, generate_extensions, generate_queues
    from hotline.calls.settings import CallSettings
    from hotline.config import load_settings
    from hotline.registry import load_registry

    install = find_asterisk()  # before the temporary directory: a missing Asterisk leaves nothing behind
    tmp = Path(tempfile.mkdtemp(prefix="pbx-bench-"))
    data_dir = tmp / "data"
    sandbox = AsteriskSandbox(tmp / "pbx", install, talk_seconds=args.talk)
    sandbox.init()
    world: AsteriskSandbox | None = None
    if args.network == "iax2":
        world = AsteriskSandbox(tmp / "world", install, talk_seconds=args.talk)
        world.init()
        (world.etc / "extensions.conf").write_text(WORLD_DIALPLAN)
        pbx_iax, world_iax = free_port(), free_port()
        _iax(sandbox, "pbx", pbx_iax, "world", world_iax, "from-trunk")
        _iax(world, "world", world_iax, "pbx", pbx_iax, "phones")
    agi_port, web_port = free_port(), free_port()
    config = tmp / "hotline.toml"
    without = set(filter(None, args.without.split(",")))
    _config_file(config, sandbox, args.follow_interval, without)
    env = dict(os.environ, HOTLINE_CONFIG=str(config), HOTLINE_DATA_DIR=str(data_dir),
               HOTLINE_AGI_PORT=str(agi_port), HOTLINE_WEB_PORT=str(web_port),
               HOTLINE_AMI_SECRET=sandbox.ami_secret,
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("HOTLINE_DATABASE_URL", None)
    if args.log_level:
        env["HOTLINE_LOG_LEVEL"] = args.log_level
    server: subprocess.Popen[bytes] | None = None
    postmaster_pid: int | None = None
    conn = None
    ami: Ami | None = None
    try:
        t0 = time.monotonic()
        for cmd in (["migrate"], ["hotlines", "sync"]):
            subprocess.run([*HOTLINE, *cmd], env=env, check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        settings = load_settings(env=env)
        registry = load_registry(settings.registry_path)
        sandbox.write_hotline(generate_extensions(registry, DialplanOptions(f"agi://127.0.0.1:{agi_port}")),
                              generate_queues(registry, CallSettings.from_settings(settings)))
        for pbx in filter(None, (sandbox, world)):
            pbx.start()
            pbx.rx(f"dialplan set global TALK {args.talk}")
            if args.media:
                pbx.rx("dialplan set global MEDIA 1")
        log = (tmp / "serve.log").open("wb")
        server = subprocess.Popen([*HOTLINE, "serve", *args.serve_args.split()], env=env, cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 120
        while b"hotline is running" not in (tmp / "serve.log").read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hotline serve did not start:\n" + (tmp / "serve.log").read_text()[-3000:])
            await asyncio.sleep(0.2)
        postmaster_pid, sockdir, pgport = _postmaster(data_dir / "pg")
        print(f"code {ROOT}; without {sorted(without) or '-'}; setup {time.monotonic() - t0:.1f} s; backend pid {server.pid}, postmaster {postmaster_pid}, "
              f"asterisk {sandbox._proc.pid}; data {tmp}", flush=True)

        conn = await asyncpg.connect(host=sockdir, port=pgport, user="postgres", database="hotline",
                                     server_settings={"application_name": "bench"})
        my_backend = await conn.fetchval("SELECT pg_backend_pid()")
        for setting in filter(None, args.pg_set.split(",")):  # ablation: a server setting for the whole run
            name, _, value = setting.partition("=")
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        if args.pg_set:
            await conn.fetchval("SELECT pg_reload_conf()")
        if args.sql:  # ablation: a schema change for the whole run (drop an index, disable a trigger)
            await conn.execute(Path(args.sql).read_text())
        # agents: a user and a ready seat each, and a member of the shared queue
        phone = "IAX2/world/{ext}" if world is not None else "Local/{ext}@agents"
        for i in range(1, args.agents + 1):
            ext = f"80{i:02d}"
            uid = await conn.fetchval(
                "INSERT INTO users (username, display_name, password_hash, roles) "
                "VALUES ($1, $2, 'x', '{agent}') RETURNING id", f"bench{ext}", f"坐席{ext}")
            await conn.execute("INSERT INTO seats (user_id, state, interface) VALUES ($1, 'ready', $2)",
                               uid, phone.format(ext=ext))
            sandbox.rx(f"queue add member {phone.format(ext=ext)} to hotline-12345")
        lines = [ln.number for ln in registry.lines if ln.mode in ("platform", "merged")]
        if args.lines:
            lines = args.lines.split(",")
        caller_side = world or sandbox  # where citizens are placed
        citizens = "citizens" if world is not None else "pstn"
        ami = Ami(caller_side.ami_port, caller_side.ami_username, caller_side.ami_secret)
        # what the citizen's side runs: with --media it speaks all along (a tone, 20 ms
        # frames) until the call ends, else it waits silently for at most --stay seconds
        citizen_app = {"Application": "Milliwatt"} if args.media else {"Application": "Wait", "Data": str(args.stay)}
        await ami.connect()
        rng = random.Random(args.seed)

        async def ended() -> int:
            return await conn.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")

        async def imported() -> bool:
            if "records" in without:
                return True
            rows = await conn.fetch('SELECT path, "offset" FROM ingest_file_offsets')
            done = {r["path"]: r["offset"] for r in rows}
            for path in (sandbox.cdr_csv, sandbox.queue_log):
                size = path.stat().st_size if path.exists() else 0
                if size and done.get(str(path), -1) < size:
                    return False
            return True

        async def place(n: int, concurrency: int) -> None:
            base = await ended()
            placed = 0
            while True:
                done = await ended() - base
                if done >= n:
                    return
                while placed < n and placed - done < concurrency:
                    caller = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
                    line = lines[placed % len(lines)]
                    await ami.action("Originate", Channel=f"Local/{caller}*{line}@{citizens}",
                                     Async="true", **citizen_app)
                    placed += 1
                await asyncio.sleep(args.poll)

        async def settle() -> None:
            deadline = time.monotonic() + 60
            while not await imported() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)

        async def pg_processes() -> dict[int, tuple[str, float]]:
            kinds = {r["pid"]: r["kind"] for r in await conn.fetch(
                "SELECT pid, coalesce(nullif(application_name, ''), backend_type) AS kind FROM pg_stat_activity")}
            out = {}
            for pid in _children_map().get(postmaster_pid, []):
                st = _stat(pid)
                if st is not None:
                    out[pid] = (kinds.get(pid, "?"), st[1] + st[2])
            return out

        async def table_writes() -> dict[str, tuple[int, ...]]:
            await conn.execute("SELECT pg_stat_force_next_flush()")
            return {r["relname"]: tuple(r.values())[1:] for r in await conn.fetch(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, "
                "(SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid) AS indexes "
                "FROM pg_stat_user_tables t")}

        meter = Meter(server.pid, postmaster_pid, sandbox._proc.pid)
        if args.warmup:
            await place(args.warmup, min(args.concurrency, args.warmup))
            await settle()
            await asyncio.sleep(args.settle)
        if args.log_statements:  # from the idle window on: what runs with no call at all, then per call
            await conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            await conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
            await conn.fetchval("SELECT pg_reload_conf()")
            await asyncio.sleep(0.5)
        pglog = data_dir / "pg" / "log"
        # idle: background rate of each side
        idle_log_start = pglog.stat().st_size if pglog.exists() else 0
        idle_per0 = await pg_processes()
        i0 = meter.sample()
        await asyncio.sleep(args.idle)
        i1 = meter.sample()
        idle_per1 = await pg_processes()
        if args.log_statements and pglog.exists():
            with pglog.open("rb") as fh:
                fh.seek(idle_log_start)
                Path(args.log_statements + ".idle").write_bytes(fh.read())
        idle_s = i1["t"] - i0["t"]
        idle = {k: (i1[k] - i0[k]) / idle_s for k in ("backend", "postgres", "asterisk")}
        load_before = _load()
        # the measured run
        first = await conn.fetchval("SELECT coalesce(max(id), 0) FROM calls")
        mine0 = _stat(my_backend)
        own0 = _own_cpu()
        pglog_start = pglog.stat().st_size if pglog.exists() else 0
        per0 = await pg_processes()
        tables0 = await table_writes()
        spy = None
        counter: asyncio.Task[None] | None = None
        events: dict[str, int] = {}
        if args.ami_events:  # a second AMI connection with every event class: what the PBX sends per call
            listener = Ami(sandbox.ami_port, sandbox.ami_username, sandbox.ami_secret)
            listener.reader, listener.writer = await asyncio.open_connection("127.0.0.1", sandbox.ami_port)
            await listener.reader.readline()
            listener.writer.write((f"Action: Login\r\nUsername: {sandbox.ami_username}\r\n"
                                   f"Secret: {sandbox.ami_secret}\r\nEvents: on\r\n\r\n").encode())

            async def count() -> None:
                async for raw in listener.reader:
                    if raw.startswith(b"Event: "):
                        name = raw[7:].strip().decode()
                        events[name] = events.get(name, 0) + 1
                    events["<bytes>"] = events.get("<bytes>", 0) + len(raw)

            counter = asyncio.create_task(count())
        if args.py_spy:  # sample the backend's Python stacks over the measured window only
            spy = subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "-p", str(server.pid), "-r", "250",
                                    "--nonblocking", "-f", "raw", "-o", args.py_spy],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s0 = meter.sample()
        await place(args.calls, args.concurrency)
        t_calls = time.monotonic() - s0["t"]
        await settle()
        await asyncio.sleep(args.settle)
        s1 = meter.sample()
        mine1 = _stat(my_backend)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        if counter is not None:
            counter.cancel()
            listener.writer.close()
        own = _own_cpu() - own0
        per1 = await pg_processes()
        tables1 = await table_writes()
        if args.log_statements and pglog.exists():
            with pglog.open("rb") as fh:
                fh.seek(pglog_start)
                Path(args.log_statements).write_bytes(fh.read())
        load_after = _load()
        wall = s1["t"] - s0["t"]
        stats = await conn.fetchrow(
            """SELECT count(*) AS calls,
                      count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
                      count(*) FILTER (WHERE agent_id IS NOT NULL) AS with_agent,
                      count(*) FILTER (WHERE ended_at IS NOT NULL) AS ended,
                      count(*) FILTER (WHERE state = 'completed') AS completed,
                      count(DISTINCT call_uid) AS uids
                 FROM calls WHERE id > $1""", first)
        states = await conn.fetch("SELECT state, count(*) FROM calls WHERE id > $1 GROUP BY 1 ORDER BY 1", first)
        mine = (mine1[1] - mine0[1]) if (mine0 and mine1) else 0.0
        answered = stats["answered"] or 1
        gross = {k: s1[k] - s0[k] for k in ("backend", "postgres", "asterisk")}
        gross["postgres"] -= mine
        net = {k: max(0.0, gross[k] - idle[k] * wall) for k in gross}
        print(f"\nload average before {load_before}, after {load_after}; nproc {os.cpu_count()}")
        print(f"calls placed {args.calls}, recorded {stats['calls']} ({stats['uids']} distinct uids), "
              f"ended {stats['ended']}, answered {stats['answered']} (with agent {stats['with_agent']}), "
              f"states {dict((r[0], r[1]) for r in states)}")
        print(f"wall: calls {t_calls:.1f} s, window incl. import {wall:.1f} s; "
              f"agents {args.agents}, concurrency {args.concurrency}, talk {args.talk} s, "
              f"media {'both ways' if args.media else 'none'}, phones over {args.network}")
        print("idle rate (ms CPU per s): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in idle.items()))
        print(f"bench's own PG connection subtracted: {mine * 1000:.0f} ms; bench process CPU {own:.2f} s")
        print("\nCPU per answered call (ms)      gross    net of idle")
        for k in ("backend", "postgres"):
            print(f"  {k:<28} {gross[k] / answered * 1000:7.2f}  {net[k] / answered * 1000:7.2f}")
        ours_g = gross["backend"] + gross["postgres"]
        ours_n = net["backend"] + net["postgres"]
        print(f"  {'ours (backend + postgres)':<28} {ours_g / answered * 1000:7.2f}  {ours_n / answered * 1000:7.2f}")
        print(f"  {'asterisk':<28} {gross['asterisk'] / answered * 1000:7.2f}  "
              f"{net['asterisk'] / answered * 1000:7.2f}")
        print(f"  {'ratio ours / asterisk':<28} {ours_g / max(gross['asterisk'], 1e-9):7.2f}  "
              f"{ours_n / max(net['asterisk'], 1e-9):7.2f}")
        groups = _by_process(per0, per1, gross["postgres"] + mine)
        print("\nPostgreSQL CPU by process (ms per answered call; 'bench' is subtracted above):")
        for label, cpu in sorted(groups.items(), key=lambda kv: -kv[1]):
            if cpu >= 0.00002 * answered:
                print(f"  {label:<60} {cpu / answered * 1000:7.2f}")
        idle_groups = _by_process(idle_per0, idle_per1, i1["postgres"] - i0["postgres"])
        print("\nPostgreSQL CPU by process while idle (ms per s; 'bench' is subtracted above):")
        for label, cpu in sorted(idle_groups.items(), key=lambda kv: -kv[1]):
            if cpu >= 0.00002 * idle_s:
                print(f"  {label:<60} {cpu / idle_s * 1000:7.2f}")
        print("\nRows written per answered call (inserted, updated, of which HOT, deleted; indexes):")
        for name, after in sorted(tables1.items(), key=lambda kv: -sum(kv[1][:4])):
            d = [a - b for a, b in zip(after[:4], tables0.get(name, (0, 0, 0, 0))[:4], strict=True)]
            if sum(d):
                print(f"  {name:<28} " + " ".join(f"{v / answered:6.2f}" for v in d) + f"   {after[4]}")
        if events:
            total = sum(v for k, v in events.items() if k != "<bytes>")
            print(f"\nAMI events per answered call (all classes): {total / answered:.1f}, "
                  f"{events.get('<bytes>', 0) / answered / 1024:.1f} KiB; top:")
            for name, n in sorted(events.items(), key=lambda kv: -kv[1])[:15]:
                if name != "<bytes>":
                    print(f"  {name:<28} {n / answered:6.1f}")
        if stats["answered"] != args.calls:
            print(f"WARNING: {args.calls - stats['answered']} calls not answered", flush=True)
        return 0
    except BaseException:
        log_text = (tmp / "serve.log").read_text(errors="replace") if (tmp / "serve.log").exists() else ""
        alive = server is not None and server.poll() is None
        print(f"FAILED; backend {'running' if alive else 'exited'}; "
              f"postmaster {'running' if postmaster_pid and _stat(postmaster_pid) else 'gone'}; "
              f"last backend log lines:\n{log_text[-3000:]}", file=sys.stderr, flush=True)
        raise
    finally:
        if ami is not None:
            try:
                await ami.close()
            except Exception:
                pass
        if conn is not None:
            await conn.close()
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
        sandbox.stop()
        if world is not None:
            world.stop()
        if postmaster_pid is not None and _stat(postmaster_pid) is not None:
            try:
                os.kill(postmaster_pid, signal.SIGTERM)  # a server the backend left behind
                for _ in range(100):
                    if _stat(postmaster_pid) is None:
                        break
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--talk", type=int, default=1, help="seconds an agent talks")
    p.add_argument("--media", action="store_true",
                   help="audio both ways: the agent phone plays a tone while it talks, the citizen one from "
                        "the start (Playtones / Milliwatt, 20 ms frames relayed by Asterisk like a call's RTP)")
    p.add_argument("--network", choices=("local", "iax2"), default="local",
                   help="how citizens and agent phones reach the PBX: 'local' (Local channels inside it) or "
                        "'iax2' (a second Asterisk, the world, over an IAX2 trunk on UDP: real network "
                        "channels; the world's CPU is not counted)")
    p.add_argument("--stay", type=int, default=120, help="seconds a citizen stays at most")
    p.add_argument("--warmup", type=int, default=10, help="calls before the measured window")
    p.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    p.add_argument("--settle", type=float, default=1.0, help="seconds after the import completes")
    p.add_argument("--poll", type=float, default=0.25, help="pacing poll interval")
    p.add_argument("--lines", default="", help="comma-separated numbers (default: platform + merged lines)")
    p.add_argument("--follow-interval", type=float, default=None, help="override [ingest] follow_interval")
    p.add_argument("--log-level", default="", help="HOTLINE_LOG_LEVEL for the backend (default: the config's)")
    p.add_argument("--serve-args", default="", help="extra `hotline serve` flags, e.g. --no-web")
    p.add_argument("--log-statements", default="", metavar="FILE",
                   help="log every statement (ALTER SYSTEM log_statement=all) and save the window's log to FILE")
    p.add_argument("--py-spy", default="", metavar="FILE",
                   help="record the backend with py-spy (raw collapsed stacks) over the window; CPU figures "
                        "of such a run include py-spy's perturbation")
    p.add_argument("--tree", default="", metavar="DIR",
                   help="run the backend (and the dialplan generator) from this copy of the project instead of "
                        "the checkout (e.g. a frozen snapshot for A/B runs)")
    p.add_argument("--without", default="", metavar="PARTS",
                   help="ablation: comma-separated node parts left unconfigured: 'ami' (no AMI telephony "
                        "service, no AMI transfers), 'records' (no Master.csv / queue_log followers)")
    p.add_argument("--pg-set", default="", metavar="NAME=VALUE,...",
                   help="ablation: PostgreSQL settings (ALTER SYSTEM + reload) before the agents are added, "
                        "e.g. synchronous_commit=off")
    p.add_argument("--sql", default="", metavar="FILE",
                   help="ablation: run this SQL file on the database before the agents are made")
    p.add_argument("--ami-events", action="store_true",
                   help="count the AMI events Asterisk emits per call (a second AMI connection: analysis only)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
