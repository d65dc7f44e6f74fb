"""Asterisk's side of FastAGI, byte for byte: for tests, ``hotline simulate``, the
console's browser tests and demo traffic.

Quick use::

    from hotline.agi.peer import run_call, simulate_call

    # one AGI request, like Asterisk's AGI(agi://127.0.0.1:4573/incoming?line=12366)
    t = await run_call("127.0.0.1", 4573, "incoming?line=12366",
                       headers={"agi_callerid": "13800138000", "agi_uniqueid": "1700000000.1"})
    t.var("HOTLINE_ROUTE")      # 'subcenter'  (leading '_'/'__' inheritance marks ignored)
    t.variables                 # every SET VARIABLE and EXEC MSet pair, raw names
    t.commands                  # every command line the server sent, decoded
    t.outcome                   # 'closed' (server ended the session), 'hangup', 'stalled', ...

    # a whole call: incoming → (an agent seat answers) → hangup handler
    call = await simulate_call("127.0.0.1", 4573, dialled="12345", caller="13800138000",
                               answer_interface="PJSIP/8001", talk_seconds=0)
    call.uid, call.route, call.transcripts

``run_call(host, port, script, headers=None, args=(), responder=None, *, ...)``:

* ``script``: the path after the host, with its query (``incoming?line=12345``);
  sent as ``agi_network_script`` (no leading slash, as Asterisk does) and in
  ``agi_request``.
* ``headers``: overrides/additions to the ~20 ``agi_*`` headers Asterisk sends
  (see :func:`asterisk_headers`); ``args`` become ``agi_arg_1..N``.
* ``responder(command, peer) -> str | list[str] | None``: the reply lines for a
  command (:class:`Command`: ``name``, ``args``, ``line``); None means "answer like
  Asterisk" (:meth:`AgiPeer.default_reply`). Use it to inject ``HANGUP`` lines,
  ``510``, multi-line ``520``, ``100 Trying``...
* ``hangup_after=N``: after N commands answered, an unsolicited ``HANGUP`` line
  arrives before the next reply; from then on commands get ``511`` (dead channel).
* ``close_after=N``: the connection is closed after N commands (a caller gone and
  ``AGIEXITONHANGUP``); ``stall_after=N``: command N+1 is never answered (a dead
  peer); ``dead=True``: every command gets ``511``.
* ``timeout``: seconds before the peer gives up on the server (default 10).

:func:`raw_exchange` sends arbitrary bytes (hostile headers) and returns what came
back. ``AgiPeer(...).run_process(argv, classic_headers(script, args=[...]))`` plays
the same call against a classic AGI script over stdin/stdout (``transcript.stderr``
holds what Asterisk would print on its console). Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AgiPeer", "Command", "SimulatedCall", "Transcript", "asterisk_headers", "classic_headers", "parse_command",
    "raw_exchange", "run_call", "simulate_call",
]

_COMMANDS = (
    "GET FULL VARIABLE", "SET VARIABLE", "GET VARIABLE", "DATABASE GET", "DATABASE PUT",
    "CHANNEL STATUS", "STREAM FILE", "SET MUSIC", "VERBOSE", "ANSWER", "HANGUP", "EXEC", "GOSUB",
    "NOOP", "WAIT FOR DIGIT", "SAY DIGITS", "GET DATA",
)
_uids = itertools.count(1)


def parse_command(line: str) -> tuple[str, list[str]]:
    """Split a command line the way Asterisk's ``parse_args`` does (whitespace,
    double quotes, backslash escapes), then match the command's words."""
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    started = False
    for ch in line.rstrip("\n"):
        if escaped:
            current.append(ch)
            escaped = False
            started = True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        words.append("".join(current))
    upper = [w.upper() for w in words]
    for name in _COMMANDS:
        parts = name.split()
        if upper[: len(parts)] == parts:
            return name, words[len(parts):]
    return (upper[0] if upper else ""), words[1:]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: list[str]
    line: str


def asterisk_headers(
    script: str, *, host: str = "127.0.0.1", port: int = 4573, uniqueid: str | None = None,
    callerid: str = "13800138000", calleridname: str = "unknown", dnid: str = "12345",
    extension: str | None = None, channel: str | None = None,
) -> dict[str, str]:
    """The header block Asterisk 18+ sends for ``AGI(agi://host:port/<script>)``."""
    uid = uniqueid or f"{int(time.time())}.{next(_uids)}"
    return {
        "agi_network": "yes",
        "agi_network_script": script.lstrip("/"),
        "agi_request": f"agi://{host}:{port}/{script.lstrip('/')}",
        "agi_channel": channel or f"PJSIP/trunk-{next(_uids):08x}",
        "agi_language": "zh",
        "agi_type": "PJSIP",
        "agi_uniqueid": uid,
        "agi_version": "20.5.0",
        "agi_callerid": callerid,
        "agi_calleridname": calleridname,
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": dnid,
        "agi_rdnis": "unknown",
        "agi_context": "hotline-incoming",
        "agi_extension": extension or dnid,
        "agi_priority": "5",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
    }


@dataclass(slots=True)
class Transcript:
    script: str
    headers: dict[str, str]
    commands: list[Command] = field(default_factory=list)
    replies: list[list[str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    outcome: str = "closed"  # closed | hangup | stalled | peer_timeout | reset
    seconds: float = 0.0
    returncode: int | None = None  # classic AGI (run_process) only
    stderr: str = ""  # classic AGI (run_process) only

    def var(self, name: str) -> str | None:
        """A variable the server set, ignoring inheritance prefixes (``__NAME``)."""
        for key in (name, f"_{name}", f"__{name}"):
            if key in self.variables:
                return self.variables[key]
        return None

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")


Responder = Callable[[Command, "AgiPeer"], "str | list[str] | None | Awaitable[str | list[str] | None]"]


class AgiPeer:
    """One Asterisk channel talking to a FastAGI server."""

    def __init__(
        self, *, responder: Responder | None = None, hangup_after: int | None = None,
        close_after: int | None = None, stall_after: int | None = None, dead: bool = False,
        channel_variables: dict[str, str] | None = None,
    ) -> None:
        self.responder = responder
        self.hangup_after = hangup_after
        self.close_after = close_after
        self.stall_after = stall_after
        self.dead = dead
        self.hung_up = False
        self.channel_variables = dict(channel_variables or {})

    def default_reply(self, command: Command) -> list[str]:
        if self.dead or self.hung_up:
            return ["511 Command Not Permitted on a dead channel or intercept routine"]
        name, args = command.name, command.args
        if name == "SET VARIABLE" and len(args) >= 2:
            self.channel_variables[args[0].lstrip("_")] = args[1]
            return ["200 result=1"]
        if name in ("GET VARIABLE", "GET FULL VARIABLE") and args:
            key = args[0].strip("${}").lstrip("_")
            if key in self.channel_variables:
                return [f"200 result=1 ({self.channel_variables[key]})"]
            return ["200 result=0"]
        if name in ("VERBOSE", "NOOP", "ANSWER", "SET MUSIC", "DATABASE PUT"):
            return ["200 result=1" if name != "ANSWER" else "200 result=0"]
        if name == "GOSUB":
            return ["100 result=0 Trying...", "200 result=0 Gosub complete"]
        if name == "EXEC" and args and args[0].lower() == "mset":
            for name_, value in mset_pairs(args[1] if len(args) > 1 else ""):
                self.channel_variables[name_.lstrip("_")] = value
            return ["200 result=0"]
        if name == "EXEC":
            return ["200 result=0"]
        if name == "CHANNEL STATUS":
            return ["200 result=6"]
        return ["510 Invalid or unknown command"]

    async def run(
        self, host: str, port: int, headers: dict[str, str], *, timeout: float = 10.0  # noqa: ASYNC109
    ) -> Transcript:
        """FastAGI: connect to ``host:port`` and play the call."""
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return await self._exchange(reader, writer, headers, timeout)

    async def run_process(
        self, argv: list[str], headers: dict[str, str], *, env: dict[str, str] | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> Transcript:
        """Classic AGI: start ``argv`` (e.g. ``[python, agi_scripts/incoming.py, '12345']``)
        and play the call over its stdin/stdout, as Asterisk's ``AGI(script)`` does.
        The process's stderr is kept in ``transcript.stderr`` (Asterisk shows it on its console)."""
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, limit=1 << 20,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.ensure_future(proc.stderr.read())
        transcript = await self._exchange(proc.stdout, proc.stdin, headers, timeout)
        try:
            async with asyncio.timeout(timeout):
                transcript.returncode = await proc.wait()
        except TimeoutError:
            proc.kill()
            transcript.returncode = await proc.wait()
        transcript.stderr = (await stderr_task).decode("utf-8", "replace")
        return transcript

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | Any, headers: dict[str, str],
        timeout: float,  # noqa: ASYNC109
    ) -> Transcript:
        script = headers.get("agi_network_script", "") or headers.get("agi_request", "")
        transcript = Transcript(script, headers)
        started = time.perf_counter()
        try:
            block = "".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n"
            writer.write(block.encode("utf-8"))
            await writer.drain()
            if self.close_after == 0:  # the caller is gone before the first command
                transcript.outcome = "hangup"
                return transcript
            async with asyncio.timeout(timeout):
                await self._loop(reader, writer, transcript)
        except TimeoutError:
            transcript.outcome = "peer_timeout"
        except (ConnectionError, OSError):
            transcript.outcome = "reset"
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            transcript.seconds = time.perf_counter() - started
        return transcript

    async def _loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, t: Transcript) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                t.outcome = "hangup" if self.hung_up and t.outcome == "closed" else t.outcome
                return  # the server ended the session
            line = raw.decode("utf-8", "replace").rstrip("\n")
            name, args = parse_command(line)
            command = Command(name, args, line)
            t.commands.append(command)
            n = len(t.commands)
            if self.stall_after is not None and n > self.stall_after:
                t.outcome = "stalled"
                await reader.read()  # wait for the server to give up and close
                return
            lines: list[str] = []
            if self.hangup_after is not None and n > self.hangup_after and not self.hung_up:
                self.hung_up = True
                lines.append("HANGUP")
            reply: Any = None
            if self.responder is not None:
                reply = self.responder(command, self)
                if asyncio.iscoroutine(reply):
                    reply = await reply
            if reply is None:
                reply = self.default_reply(command)
            elif isinstance(reply, str):
                reply = [reply]
            lines.extend(reply)
            if name == "SET VARIABLE" and len(args) >= 2 and any(r.startswith("200") for r in reply):
                t.variables[args[0]] = args[1]
            if (name == "EXEC" and len(args) >= 2 and args[0].lower() == "mset"
                    and any(r.startswith("200 result=0") for r in reply)):
                t.variables.update(mset_pairs(args[1]))
            t.replies.append(lines)
            writer.write("".join(f"{r}\n" for r in lines).encode("utf-8"))
            await writer.drain()
            if self.close_after is not None and n >= self.close_after:
                t.outcome = "hangup"
                return


def mset_pairs(text: str) -> list[tuple[str, str]]:
    """``MSet(name=value,...)``'s argument as Asterisk splits it (the values our server
    sends through MSet hold no comma, quote or backslash)."""
    pairs = []
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            pairs.append((name.strip(), value))
    return pairs


async def run_call(
    host: str,
    port: int,
    script: str,
    headers: dict[str, str] | None = None,
    args: list[str] | tuple[str, ...] = (),
    responder: Responder | None = None,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 (the peer bounds itself, like Asterisk cannot)
    **behaviour: Any,
) -> Transcript:
    """One AGI request as Asterisk makes it; returns the :class:`Transcript`."""
    base = asterisk_headers(script, host=host, port=port)
    base.update(headers or {})
    for i, value in enumerate(args, start=1):
        base[f"agi_arg_{i}"] = str(value)
    return await AgiPeer(responder=responder, **behaviour).run(host, port, base, timeout=timeout)


def classic_headers(script_path: str, *, args: list[str] | tuple[str, ...] = (), **kw: Any) -> dict[str, str]:
    """Headers Asterisk sends to ``AGI(/path/script.py,args...)`` (no agi_network_*)."""
    headers = asterisk_headers(script_path, **kw)
    del headers["agi_network"], headers["agi_network_script"]
    headers["agi_request"] = script_path
    for i, value in enumerate(args, start=1):
        headers[f"agi_arg_{i}"] = str(value)
    return headers


async def raw_exchange(
    host: str, port: int, data: bytes, *, timeout: float = 10.0, close_write: bool = False  # noqa: ASYNC109
) -> bytes:
    """Send raw bytes (hostile headers, garbage) and return everything the server sent
    until it closed the connection (or ``timeout``)."""
    reader, writer = await asyncio.open_connection(host, port)
    received = b""
    try:
        writer.write(data)
        await writer.drain()
        if close_write and writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
                # answer anything like a command so the server can finish its flow
                if received.endswith(b"\n"):
                    for _ in range(chunk.count(b"\n")):
                        writer.write(b"200 result=1\n")
                    await writer.drain()
    except (TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return received


@dataclass(slots=True)
class SimulatedCall:
    uid: str
    dialled: str
    caller: str
    route: str | None
    transcripts: list[Transcript] = field(default_factory=list)


async def simulate_call(
    host: str,
    port: int,
    *,
    dialled: str,
    caller: str,
    caller_name: str = "unknown",
    answer_interface: str | None = None,
    talk_seconds: float = 0.0,
    hangup: bool = True,
    dialstatus: str = "",
    uniqueid: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> SimulatedCall:
    """A whole call as the generated dialplan drives it: ``incoming`` → (a queue
    member at ``answer_interface`` picks it up: ``agent_connect``) → after
    ``talk_seconds`` the hangup handler (``hangup``). ``dialstatus`` (``ANSWER``,
    ``NOANSWER``...) is reported as the ``Dial()`` result when the route is a sub-centre."""
    uid = uniqueid or f"sim-{time.time():.6f}-{next(_uids)}"
    headers = asterisk_headers("incoming", host=host, port=port, uniqueid=uid, callerid=caller,
                               calleridname=caller_name, dnid=dialled)
    headers["agi_network_script"] = f"incoming?line={dialled}"
    first = await AgiPeer().run(host, port, headers, timeout=timeout)
    call = SimulatedCall(uid, dialled, caller, first.var("HOTLINE_ROUTE"), [first])
    if dialstatus and call.route == "subcenter":
        call.transcripts.append(await run_call(
            host, port, "dial_result", {"agi_uniqueid": uid}, ["", dialstatus, uid], timeout=timeout))
    if answer_interface and (call.route != "subcenter" or dialstatus != "ANSWER"):
        agent_headers = {"agi_channel": f"{answer_interface}-{next(_uids):08x}",
                         "agi_uniqueid": f"{uid}-agent"}
        call.transcripts.append(await run_call(host, port, "agent_connect", agent_headers, [uid], timeout=timeout))
    if talk_seconds:
        await asyncio.sleep(talk_seconds)
    if hangup:
        dialstatus = dialstatus if call.route == "subcenter" else ""
        answered_time = str(int(talk_seconds)) if dialstatus == "ANSWER" else ""
        call.transcripts.append(await run_call(
            host, port, "hangup", {"agi_uniqueid": uid},
            [uid, dialstatus, answered_time, "16", ""], timeout=timeout,
        ))
    return call
