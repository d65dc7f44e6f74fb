"""Asterisk Manager Interface clients, for what the backend asks of the PBX outside
an AGI session: move a live caller channel when an agent clicks "transfer" on the
console (:class:`AmiClient`: ``Setvar`` the decision, then ``Redirect`` the channel
into the generated ``hotline-transfer`` context), and drive queue membership of
seats and follow events (:class:`AmiConnection`, kept open by the telephony service).

The AMI protocol: a banner line (``Asterisk Call Manager/x.y``), then blocks of
``Key: Value`` lines ended by a blank line, CRLF-separated. Actions carry an
``ActionID``; responses echo it; events (``Event:``) may arrive in between and
are skipped. Values are stripped of CR/LF so a value can never start a second
action. One short connection per transfer: transfers are rare, and a connection
that is not kept cannot go stale. :class:`AmiConnection` multiplexes any number of
concurrent actions on one connection (responses matched by ``ActionID``, list
actions collected up to their ``...Complete`` event) and hands every other event to
a callback.

:class:`AmiTestPeer` is Asterisk's side of the same protocol, for tests and
demos (it records actions and answers Success, or Error for unknown channels).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("hotline.agi.ami")
#: the largest AMI block read at once (list responses arrive one block per entry)
STREAM_LIMIT = 1024 * 1024
_CONTROL = re.compile(r"[\r\n\x00]")
_ids = itertools.count(1)


class AmiError(Exception):
    """The PBX refused an action, or could not be reached."""


def _clean(value: object) -> str:
    return _CONTROL.sub(" ", str(value))


def encode_action(action: str, fields: dict[str, object]) -> tuple[str, bytes]:
    action_id = f"hotline-{next(_ids)}"
    lines = [f"Action: {_clean(action)}", f"ActionID: {action_id}"]
    lines += [f"{_clean(k)}: {_clean(v)}" for k, v in fields.items()]
    return action_id, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


async def read_block(reader: asyncio.StreamReader) -> dict[str, str]:
    """The next ``Key: Value`` block (one read up to the blank line that ends it)."""
    while True:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            raise AmiError("AMI connection closed") from None
        except asyncio.LimitOverrunError:
            raise AmiError("AMI block larger than the stream limit") from None
        block: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            if line:
                key, _, value = line.partition(":")
                block.setdefault(key.strip(), value.strip())
        if block:
            return block


@dataclass(frozen=True, slots=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str
    timeout: float = 3.0


class AmiClient:
    def __init__(self, config: AmiConfig) -> None:
        self.config = config

    async def redirect(
        self, channel: str, context: str, exten: str, priority: int = 1,
        variables: dict[str, str] | None = None,
    ) -> None:
        """Set ``variables`` on ``channel`` and redirect it to ``context,exten,priority``.
        Raises :class:`AmiError` on refusal or when the PBX does not answer in time."""
        try:
            async with asyncio.timeout(self.config.timeout):
                reader, writer = await asyncio.open_connection(self.config.host, self.config.port)
                try:
                    banner = await reader.readline()
                    if not banner.startswith(b"Asterisk Call Manager"):
                        raise AmiError(f"not an AMI server: {banner[:60]!r}")
                    await self._action(reader, writer, "Login", {
                        "Username": self.config.username, "Secret": self.config.secret, "Events": "off",
                    })
                    for name, value in (variables or {}).items():
                        await self._action(reader, writer, "Setvar", {
                            "Channel": channel, "Variable": name, "Value": value,
                        })
                    await self._action(reader, writer, "Redirect", {
                        "Channel": channel, "Context": context, "Exten": exten, "Priority": priority,
                    })
                    await self._action(reader, writer, "Logoff", {}, expect=("Goodbye", "Success"))
                finally:
                    writer.close()
                    try:
                        await writer.wait_closed()
                    except (ConnectionError, OSError):
                        pass
        except TimeoutError:
            raise AmiError(f"AMI at {self.config.host}:{self.config.port} did not answer in time") from None
        except (ConnectionError, OSError) as exc:
            raise AmiError(f"AMI at {self.config.host}:{self.config.port} unreachable: {exc}") from None

    async def _action(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, action: str,
        fields: dict[str, object], expect: tuple[str, ...] = ("Success",),
    ) -> dict[str, str]:
        action_id, data = encode_action(action, fields)
        writer.write(data)
        await writer.drain()
        while True:
            block = await read_block(reader)
            if "Event" in block or block.get("ActionID") != action_id:
                continue
            if block.get("Response") not in expect:
                raise AmiError(f"{action} refused: {block.get('Message') or block.get('Response')}")
            return block


EventCallback = Callable[[dict[str, str]], None]


class AmiRefused(AmiError):
    """The PBX answered ``Response: Error`` to an action (it was reachable)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action} refused: {message}")
        self.action = action
        self.reason = message


class AmiNoEvent(AmiError):
    """An action was accepted but the event that completes it never came (in time)."""


class AmiConnection:
    """One AMI session that stays open: logs in, then multiplexes actions.

    :meth:`action` sends an action and returns its response block (raises
    :class:`AmiRefused` on ``Response: Error``); :meth:`action_list` also collects the
    events the action produces (those carrying its ``ActionID``) up to the one with
    ``EventList: Complete``. Every other event goes to ``on_event`` (called in the
    reader task: it must not block). :attr:`closed` is set when the connection ends
    (Asterisk stopped, the socket dropped, :meth:`close`); pending actions then fail
    with :class:`AmiError`. Reconnecting is the owner's decision."""

    def __init__(self, config: AmiConfig, *, events: bool | Sequence[str] = False,
                 on_event: EventCallback | None = None) -> None:
        """``events``: False (none), True (all), or the names of the events wanted: the
        session then asks Asterisk (``Filter``) to send only those, which spares both
        sides the ~190 events a queued call otherwise produces (VarSet, Newexten...)."""
        self.config = config
        self.events = events
        self.on_event = on_event
        self.closed = asyncio.Event()
        self.banner = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[asyncio.Future[list[dict[str, str]]], list[dict[str, str]], bool]] = {}
        #: actions whose outcome comes later as an event carrying their ActionID
        #: (an asynchronous ``Originate``'s ``OriginateResponse``): ActionID -> (event name, future)
        self._awaiting: dict[str, tuple[str, asyncio.Future[dict[str, str]]]] = {}
        self._error: AmiError | None = None

    @property
    def where(self) -> str:
        return f"AMI at {self.config.host}:{self.config.port}"

    async def connect(self) -> None:
        """Open the socket, check the banner, log in. Raises :class:`AmiError`."""
        try:
            async with asyncio.timeout(self.config.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.config.host, self.config.port, limit=STREAM_LIMIT)
                banner = await self._reader.readline()
        except TimeoutError:
            await self.close()
            raise AmiError(f"{self.where} did not answer in time") from None
        except (ConnectionError, OSError) as exc:
            await self.close()
            raise AmiError(f"{self.where} unreachable: {exc}") from None
        if not banner.startswith(b"Asterisk Call Manager"):
            await self.close()
            raise AmiError(f"not an AMI server: {banner[:60]!r}")
        self.banner = banner.decode("utf-8", "replace").strip()
        self._task = asyncio.create_task(self._read_loop(), name="ami-reader")
        try:
            await self.action("Login", {"Username": self.config.username, "Secret": self.config.secret,
                                        "Events": "on" if self.events else "off"})
            if self.events and self.events is not True:
                await self._filter(list(self.events))
        except AmiError:
            await self.close()
            raise

    async def _filter(self, names: list[str]) -> None:
        """Only these events on this session (AMI ``Filter``; needs ``system`` write).
        Refused: every event still arrives and the listeners pick (``eventfilter`` in
        manager.conf does the same on the Asterisk side)."""
        for name in names:
            try:
                # a regular expression over the event's text: the whitespace after the name
                # (its CR LF) keeps "Hangup" from also letting HangupRequest,
                # HangupHandlerPush and HangupHandlerRun through (Asterisk 22, measured)
                await self.action("Filter", {"Operation": "Add", "Filter": f"Event: {name}[[:space:]]"})
            except AmiRefused as exc:
                log.info("%s: event filter refused (%s); receiving every event", self.where, exc)
                return

    async def __aenter__(self) -> AmiConnection:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def action(self, name: str, fields: dict[str, object] | None = None) -> dict[str, str]:
        """Send one action; its response block. Raises :class:`AmiRefused` when the PBX
        answers Error, :class:`AmiError` when it cannot be reached or does not answer."""
        return (await self._send(name, fields or {}, listing=False))[0]

    async def action_list(self, name: str, fields: dict[str, object] | None = None) -> list[dict[str, str]]:
        """Send a list action (``QueueStatus``, ``CoreShowChannels``...); the events it
        produced, up to and without the closing ``...Complete`` event."""
        return (await self._send(name, fields or {}, listing=True))[1:]

    async def action_then_event(self, name: str, fields: dict[str, object], *, event: str,
                                within: float) -> dict[str, str]:
        """Send an action Asterisk answers at once and completes later with ``event``
        carrying the action's ``ActionID`` (``Originate`` with ``Async: true`` →
        ``OriginateResponse``); that event. The session must receive ``event`` (listed
        in ``events``). Raises :class:`AmiRefused` when the action is refused,
        :class:`AmiNoEvent` when the event does not come ``within`` seconds,
        :class:`AmiError` when the connection ends first."""
        action_id, data = encode_action(name, fields)
        outcome: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._awaiting[action_id] = (event, outcome)
        try:
            await self._send(name, fields, listing=False, encoded=(action_id, data))
            try:
                async with asyncio.timeout(within):
                    return await outcome
            except TimeoutError:
                raise AmiNoEvent(f"{self.where}: no {event} for {name} within {within:g} s") from None
        finally:
            self._awaiting.pop(action_id, None)
            if outcome.done() and not outcome.cancelled():
                outcome.exception()  # the connection's end, already raised by _send: marked as seen

    async def _send(self, name: str, fields: dict[str, object], *, listing: bool,
                    encoded: tuple[str, bytes] | None = None) -> list[dict[str, str]]:
        if self._writer is None or self.closed.is_set():
            raise self._error or AmiError(f"{self.where}: not connected")
        action_id, data = encoded or encode_action(name, fields)
        future: asyncio.Future[list[dict[str, str]]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = (future, [], listing)
        try:
            async with asyncio.timeout(self.config.timeout):
                self._writer.write(data)
                await self._writer.drain()
                blocks = await future
        except TimeoutError:
            raise AmiError(f"{self.where} did not answer {name} in time") from None
        except (ConnectionError, OSError) as exc:
            raise AmiError(f"{self.where}: {name} failed: {exc}") from None
        finally:
            self._pending.pop(action_id, None)
        response = blocks[0]
        if response.get("Response") not in ("Success", "Goodbye"):
            raise AmiRefused(name, response.get("Message") or response.get("Response") or "no response")
        return blocks

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                block = await read_block(self._reader)
                self._dispatch(block)
        except AmiError:
            self._error = AmiError(f"{self.where}: connection closed")
        except (ConnectionError, OSError) as exc:
            self._error = AmiError(f"{self.where}: connection lost: {exc}")
        finally:
            self.closed.set()
            error = self._error or AmiError(f"{self.where}: connection closed")
            for future, _, _ in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            for _, outcome in self._awaiting.values():
                if not outcome.done():
                    outcome.set_exception(error)

    def _dispatch(self, block: dict[str, str]) -> None:
        action_id = block.get("ActionID", "")
        awaited = self._awaiting.get(action_id)
        if awaited is not None and block.get("Event") == awaited[0]:
            if not awaited[1].done():
                awaited[1].set_result(block)
            return
        pending = self._pending.get(action_id)
        if pending is not None:
            future, blocks, listing = pending
            if future.done():
                return
            blocks.append(block)
            if "Response" in block:
                if not listing or block.get("Response") != "Success" or block.get("EventList") != "start":
                    future.set_result(blocks)
            elif block.get("EventList", "").lower() == "complete":
                blocks.pop()
                future.set_result(blocks)
            return
        if "Event" in block and self.on_event is not None:
            self.on_event(block)

    async def close(self) -> None:
        """Log off (politely, briefly) and close the socket."""
        writer, self._writer = self._writer, None
        if writer is not None:
            if not self.closed.is_set():
                try:
                    _, data = encode_action("Logoff", {})
                    writer.write(data)
                except (ConnectionError, OSError):
                    pass
            writer.close()
            try:
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            except (TimeoutError, ConnectionError, OSError):
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: S110 - closing anyway
                pass
            self._task = None
        self.closed.set()


@dataclass
class AmiTestPeer:
    """Asterisk's side of AMI on a real socket (tests, demos). Channels in
    ``channels`` exist; actions on others get ``Response: Error``. ``Originate`` is
    queued and never followed by its ``OriginateResponse``, as for an AMI user whose
    eventfilter drops it (a real Asterisk's outcomes are tested on a real Asterisk)."""

    username: str = "hotline"
    secret: str = "test-secret"
    channels: set[str] = field(default_factory=set)
    actions: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/7.0.3\r\n")
        writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
        authed = False
        try:
            while True:
                block = await read_block(reader)
                self.actions.append(block)
                action = block.get("Action", "").lower()
                reply = {"ActionID": block.get("ActionID", "")}
                if action == "login":
                    authed = block.get("Username") == self.username and block.get("Secret") == self.secret
                    reply |= ({"Response": "Success", "Message": "Authentication accepted"} if authed
                              else {"Response": "Error", "Message": "Authentication failed"})
                elif not authed:
                    reply |= {"Response": "Error", "Message": "Permission denied"}
                elif action == "logoff":
                    reply |= {"Response": "Goodbye", "Message": "Thanks for all the fish."}
                elif action in ("setvar", "redirect"):
                    if block.get("Channel") in self.channels:
                        reply |= {"Response": "Success", "Message": "Redirect successful" if action == "redirect"
                                  else "Variable Set"}
                    else:
                        reply |= {"Response": "Error", "Message": "Channel specified does not exist"}
                elif action == "originate":
                    reply |= {"Response": "Success", "Message": "Originate successfully queued"}
                else:
                    reply |= {"Response": "Error", "Message": "Invalid/unknown command"}
                writer.write(("".join(f"{k}: {v}\r\n" for k, v in reply.items()) + "\r\n").encode())
                await writer.drain()
                if action == "logoff":
                    break
        except AmiError:
            pass
        finally:
            writer.close()
