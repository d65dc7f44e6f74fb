"""The FastAGI wire protocol: header block, command encoding, reply parsing.

Strict and small on purpose (DESIGN.md decision 2). What Asterisk sends and how
we answer it:

* A header block of ``agi_<name>: <value>`` lines (``agi_arg_N`` for the
  arguments; ``agi_network_script`` with or without a leading slash and with its
  query string) ended by one blank line. Lines longer than ``max_line_bytes``
  end the session; other malformed lines are skipped and remembered in
  :attr:`AgiRequest.problems` so the call record can say what happened.
* Commands are one line each. Every argument is double-quoted with ``\\`` and
  ``"`` escaped, and control characters (CR, LF, NUL, ...) replaced by a space:
  Asterisk reads a command up to the newline, so a caller name or ticket text can
  never smuggle in a second command.
* Replies: ``200 result=<r>[ (<data>)][ endpos=<n>]``; ``510`` invalid command;
  ``511`` dead channel; ``520`` usage (single line, or ``520-`` ... ``520 End``);
  ``100 Trying...`` before a ``GOSUB`` result; an unsolicited ``HANGUP`` line may
  arrive before any reply (it is noted and the real reply is read after it).
* Values are raw bytes that may be cut inside a UTF-8 sequence (a Chinese caller
  name truncated by the channel driver): an incomplete tail is dropped, other bad
  bytes become U+FFFD. Nothing here raises on bad text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from hotline.calls.channel import ChannelHungUp

__all__ = [
    "AgiError", "AgiInvalidCommand", "AgiProtocolError", "AgiReply", "AgiRequest",
    "AgiUsageError", "ChannelHungUp", "DeadChannel", "build_request", "decode_value",
    "encode_command", "parse_header_line", "parse_reply_line", "quote_arg",
]

_KEY_RE = re.compile(r"^agi_[a-z0-9_]{1,64}$")
_ARG_RE = re.compile(r"^agi_arg_([1-9][0-9]{0,2})$")
_REPLY_RE = re.compile(
    r"^200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?"
    r"(?: (?P<rest>[^()]*))?\s*$",  # e.g. "200 result=0 Gosub complete"
    re.S,
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: command names we ever send (a typo becomes a ValueError here, not a 510 in production)
_COMMAND_RE = re.compile(r"^[A-Z][A-Z ]{1,40}$")
MAX_ARG_CHARS = 4000
#: res_agi reads a command into a buffer of AGI_BUF_LEN (2048) bytes; a longer line is
#: cut there and its tail read as the next command. Every line we send (newline
#: included) stays below it, with a margin.
MAX_COMMAND_BYTES = 2000
#: header keys and command names already checked against the patterns above (the same
#: few dozen come in every session; the regex runs once per distinct string, bounded).
#: A pure memo of constant patterns, the same for every node and runtime: it holds no
#: configuration, so it may stay at module level (docs/ARCHITECTURE.md, no module state)
_GOOD_KEYS: set[str] = set()
_GOOD_COMMANDS: set[str] = set()
_MAX_REMEMBERED = 512


class AgiError(Exception):
    """A FastAGI session problem (protocol, command refused)."""


class AgiProtocolError(AgiError):
    """The peer broke the protocol (oversized line, missing header end, garbage)."""


class DeadChannel(ChannelHungUp):
    """``511``: the channel is gone; commands are refused."""


class AgiInvalidCommand(AgiError):
    """``510``: Asterisk does not know the command."""


class AgiUsageError(AgiError):
    """``520``: wrong syntax; ``usage`` holds Asterisk's text."""

    def __init__(self, usage: str) -> None:
        super().__init__(usage)
        self.usage = usage


def decode_value(raw: bytes) -> str:
    """UTF-8, defensively: a sequence cut at the end is dropped, other bad bytes replaced."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            head = raw[: exc.start]
            return head.decode("utf-8", "replace")
        return raw.decode("utf-8", "replace")


def parse_header_line(raw: bytes) -> tuple[str, str] | None:
    """``agi_key: value`` → (key, value); None when the line is not a header line."""
    text = decode_value(raw.rstrip(b"\r\n"))
    key, sep, value = text.partition(":")
    if not sep:
        return None
    key = key.strip()
    if key not in _GOOD_KEYS:
        if not _KEY_RE.match(key):
            return None
        if len(_GOOD_KEYS) < _MAX_REMEMBERED:
            _GOOD_KEYS.add(key)
    return key, value.strip()


@dataclass(slots=True)
class AgiRequest:
    """The header block of one AGI request, parsed."""

    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    script: str = ""
    query: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def get(self, key: str, default: str = "") -> str:
        return self.env.get(key if key.startswith("agi_") else f"agi_{key}", default)

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    def param(self, name: str, position: int | None = None) -> str:
        """A named query-string parameter, else the positional ``agi_arg_N`` (1-based)."""
        if name in self.query:
            return self.query[name]
        if position is not None and 0 < position <= len(self.args):
            return self.args[position - 1]
        return ""


def split_script(value: str) -> tuple[str, dict[str, str]]:
    """``/incoming?line=12345`` or ``incoming?line=12345`` → ('incoming', {'line': '12345'}).

    Only the last path segment names the script (``agi://host/hotline/incoming``
    works too); repeated query keys keep their first value."""
    path, _, query = value.partition("?")
    path = unquote(path).strip().strip("/")
    name = path.rsplit("/", 1)[-1]
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return name, params


def build_request(lines: list[tuple[str, str]], problems: list[str] | None = None) -> AgiRequest:
    """Assemble parsed header lines (first occurrence of a key wins)."""
    request = AgiRequest(problems=list(problems or ()))
    numbered: dict[int, str] = {}
    for key, value in lines:
        if key in request.env:
            request.problems.append(f"duplicate header {key}")
            continue
        request.env[key] = value
        match = _ARG_RE.match(key) if key.startswith("agi_arg_") else None
        if match:
            numbered[int(match.group(1))] = value
    # agi_arg_N are positional; a gap (arg_1, arg_3) is kept as an empty arg_2
    if numbered:
        request.args = [numbered.get(i, "") for i in range(1, max(numbered) + 1)]
    script_source = request.env.get("agi_network_script") or request.env.get("agi_request", "")
    if script_source.startswith(("agi://", "hagi://")):
        script_source = script_source.split("://", 1)[1].partition("/")[2]
    request.script, request.query = split_script(script_source)
    return request


def quote_arg(value: object) -> str:
    """One double-quoted command argument that cannot break out of its line."""
    text = "" if value is None else str(value)
    if len(text) > MAX_ARG_CHARS:
        text = text[:MAX_ARG_CHARS]
    if not text.isprintable():  # every character _CONTROL_RE matches is non-printable
        text = _CONTROL_RE.sub(" ", text)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def encode_command(command: str, *args: object, notes: list[str] | None = None) -> bytes:
    """One command line, at most :data:`MAX_COMMAND_BYTES`: when the arguments do not
    fit, the longest are cut (on a character boundary, so never inside a UTF-8
    sequence or an escape) and a note saying so is appended to ``notes``."""
    if command not in _GOOD_COMMANDS:
        if not _COMMAND_RE.match(command):
            raise ValueError(f"not an AGI command name: {command!r}")
        if len(_GOOD_COMMANDS) < _MAX_REMEMBERED:
            _GOOD_COMMANDS.add(command)
    if not args:
        return (command + "\n").encode("utf-8")
    quoted = [quote_arg(a) for a in args]
    line = (command + " " + " ".join(quoted) + "\n").encode("utf-8")
    if len(line) <= MAX_COMMAND_BYTES:
        return line
    sizes = [len(q.encode("utf-8")) for q in quoted]
    excess = len(line) - MAX_COMMAND_BYTES
    while excess > 0:
        i = max(range(len(sizes)), key=sizes.__getitem__)  # the longest argument gives way first
        budget = max(2, sizes[i] - excess)
        quoted[i] = _cut_quoted(quoted[i], budget)
        cut = len(quoted[i].encode("utf-8"))
        if notes is not None:
            notes.append(f"{command} argument {i + 1} cut from {sizes[i]} to {cut} bytes "
                         f"(Asterisk reads at most {MAX_COMMAND_BYTES} bytes per command)")
        excess -= sizes[i] - cut
        sizes[i] = cut
    return (command + " " + " ".join(quoted) + "\n").encode("utf-8")


def _cut_quoted(quoted: str, max_bytes: int) -> str:
    """The longest prefix of an argument quoted by :func:`quote_arg` that fits in
    ``max_bytes`` with its quotes, cut between characters (an escape pair is kept
    whole)."""
    body = quoted[1:-1]
    used, end, i = 2, 0, 0
    while i < len(body):
        step = 2 if body[i] == "\\" else 1  # "\\x" is one escaped character
        size = len(body[i:i + step].encode("utf-8"))
        if used + size > max_bytes:
            break
        used += size
        i += step
        end = i
    return '"' + body[:end] + '"'


@dataclass(frozen=True, slots=True)
class AgiReply:
    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200 and self.result != "-1"

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


def parse_reply_line(line: str) -> AgiReply:
    """Parse one complete ``200`` line (other codes are handled by the reader)."""
    match = _REPLY_RE.match(line)
    if not match:
        raise AgiProtocolError(f"unparseable reply {line[:120]!r}")
    endpos = match.group("endpos")
    return AgiReply(
        200, match.group("result"), match.group("data"), int(endpos) if endpos else None, line
    )


MAX_USAGE_LINES = 100


class ReplyReader:
    """Turns the lines Asterisk sends after a command into that command's reply, the
    same way for every transport (FastAGI streams, classic AGI pipes).

    Feed lines one at a time: :meth:`feed` returns the ``200`` reply when it arrives
    and ``None`` while more lines are needed; it raises :class:`DeadChannel` (511),
    :class:`AgiInvalidCommand` (510), :class:`AgiUsageError` (520, single or
    multi-line, at most ``max_usage_lines``) or :class:`AgiProtocolError`. An
    unsolicited ``HANGUP`` before the reply is noted in :attr:`hangup_seen` and
    skipped, as is ``100 Trying…`` before a ``GOSUB`` result."""

    def __init__(self, max_usage_lines: int = MAX_USAGE_LINES) -> None:
        self.max_usage_lines = max_usage_lines
        self.hangup_seen = False
        self._usage: list[str] | None = None

    def feed(self, line: str) -> AgiReply | None:
        line = line.rstrip("\r\n")
        if self._usage is not None:
            self._usage.append(line)
            if line.startswith("520 "):
                raise AgiUsageError("\n".join(self._usage))
            if len(self._usage) > self.max_usage_lines:
                raise AgiProtocolError("520 usage block without its end line")
            return None
        if line.startswith("200"):  # the usual case first (a "200" line is never HANGUP)
            return parse_reply_line(line)
        if line.strip() == "HANGUP":
            self.hangup_seen = True  # unsolicited: the real reply follows
            return None
        if line.startswith("100") or not line.strip():
            return None
        if line.startswith("511"):
            raise DeadChannel(line)
        if line.startswith("510"):
            raise AgiInvalidCommand(line)
        if line.startswith("520-"):
            self._usage = [line]
            return None
        if line.startswith("520"):
            raise AgiUsageError(line)
        raise AgiProtocolError(f"unexpected reply {line[:120]!r}")
