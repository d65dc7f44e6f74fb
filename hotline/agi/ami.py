"""A small Asterisk Manager Interface client, for the one thing the backend asks
of the PBX outside an AGI session: move a live caller channel when an agent
clicks "transfer" on the console (``Setvar`` the decision, then ``Redirect`` the
channel into the generated ``hotline-transfer`` context).

The AMI protocol: a banner line (``Asterisk Call Manager/x.y``), then blocks of
``Key: Value`` lines ended by a blank line, CRLF-separated. Actions carry an
``ActionID``; responses echo it; events (``Event:``) may arrive in between and
are skipped. Values are stripped of CR/LF so a value can never start a second
action. One short connection per transfer: transfers are rare, and a connection
that is not kept cannot go stale.

:class:`AmiTestPeer` is Asterisk's side of the same protocol, for tests and
demos (it records actions and answers Success, or Error for unknown channels).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field

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
    block: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if not raw:
            raise AmiError("AMI connection closed")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if block:
                return block
            continue
        key, _, value = line.partition(":")
        block.setdefault(key.strip(), value.strip())


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


@dataclass
class AmiTestPeer:
    """Asterisk's side of AMI on a real socket (tests, demos). Channels in
    ``channels`` exist; actions on others get ``Response: Error``."""

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
