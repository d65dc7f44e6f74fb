"""Processes a test session leaves behind (``make test`` must leave none).

Every process the session starts inherits a marker in its environment
(``HOTLINE_TEST_SESSION=<id>``, set when pytest configures); servers that daemonise
(PostgreSQL's postmaster, Asterisk) keep it even after they are re-parented to init.
At the end of the session, any process still running with this session's marker, a
command line naming this session's temporary directory, or this process as an
ancestor, is a leftover: the run fails and lists them.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MARKER = "HOTLINE_TEST_SESSION"


def mark_session() -> str:
    """Give this session (and every process it starts from now on) its marker."""
    os.environ.setdefault(MARKER, uuid.uuid4().hex)
    return os.environ[MARKER]


@dataclass(frozen=True, slots=True)
class Leftover:
    pid: int
    command: str
    why: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.why}): {self.command[:300]}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/<pid>/stat."""
    raw = _read(Path(f"/proc/{pid}/stat")).decode(errors="replace")
    _, _, rest = raw.rpartition(") ")  # the command name may contain spaces and ')'
    parts = rest.split()
    return (parts[0], int(parts[1])) if len(parts) > 1 else None


def find(marker: str, temp_dir: Path | None, me: int | None = None) -> list[Leftover]:
    """Running processes (not zombies, not this one or its own threads) that this
    session started."""
    me = os.getpid() if me is None else me
    needle = f"{MARKER}={marker}".encode()
    temp = (str(temp_dir).rstrip("/") + "/").encode() if temp_dir else None  # not pytest-83 for pytest-8
    stats: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat

    def descends_from_me(pid: int) -> bool:
        seen = 0
        while pid in stats and seen < 64:
            pid = stats[pid][1]
            if pid == me:
                return True
            seen += 1
        return False

    found = []
    for pid, (state, _) in sorted(stats.items()):
        if state in ("Z", "X"):
            continue
        command = _read(Path(f"/proc/{pid}/cmdline")).replace(b"\0", b" ").decode(errors="replace").strip()
        if needle in _read(Path(f"/proc/{pid}/environ")).split(b"\0"):
            why = "started by this test session"
        elif temp and temp in command.encode():
            why = "runs from this session's temporary directory"
        elif descends_from_me(pid):
            why = "a child of the test process"
        else:
            continue
        found.append(Leftover(pid, command or f"[{pid}]", why))
    return found


def wait_for_none(marker: str, temp_dir: Path | None, grace: float = 5.0) -> list[Leftover]:
    """What is still running after ``grace`` seconds (processes being stopped get the time to exit)."""
    deadline = time.monotonic() + grace
    while True:
        found = find(marker, temp_dir)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)
