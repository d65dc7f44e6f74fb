"""The durable local journal of call-record operations (DESIGN.md decision 4).

When PostgreSQL does not answer, a flow still routes the call (from the
in-memory registry) and appends its record operations here: one JSON line per
operation, written with ``O_APPEND`` under an exclusive ``flock`` and ``fsync``'d
before the flow returns, so a record survives a crash of this process or of the
machine. Several processes may append at once (FastAGI node, classic AGI
scripts).

Replay (:meth:`Journal.replay`) renames the live file aside, applies its
operations in order, each in its own transaction together with a row in
``call_journal_applied`` keyed by the operation's id, and deletes the file when
everything is in. A replay interrupted at any point is simply run again: applied
operations are skipped, so nothing is lost and nothing is doubled. Inserts are
idempotent on their own too (``calls.call_uid`` is UNIQUE).

An operation whose call is not in the database yet (its start is in another
node's journal, not replayed yet) is not dropped: it waits in ``waiting.jsonl``
and is tried again by every later replay, until its call is there or it has
waited :attr:`Journal.max_wait` seconds; then it is kept in ``rejected.jsonl``
with the reason. Waiting entries do not hold back the live flows.

Every append starts on a line boundary: a line torn by a crash is completed with
a newline before the next entry, so it is rejected alone and never swallows the
entry written after it. ``rejected.jsonl`` holds callers' numbers: it is created
(and kept) with mode 0600.

Order is kept across the outage, per call: while operations wait in the
journal, a call's later operations (answer, update, end) also go to the journal
(see :meth:`CallWriter.write`), so a hangup never reaches the database before
the start of its call; a new call's first record goes straight in.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from hotline.calls.store import SINGLE_STATEMENT_OPS, CallStore, DatabaseDown, apply_op

log = logging.getLogger("hotline.calls.journal")

LIVE_NAME = "calls.jsonl"
REPLAY_SUFFIX = ".replaying"
REJECTED_NAME = "rejected.jsonl"
WAITING_NAME = "waiting.jsonl"
RETRY_SUFFIX = ".retrying"
#: default bound of how long an operation waits for its call (seconds since it first waited)
MAX_WAIT_SECONDS = 3600.0


class _CallNotThere(Exception):
    """Raised inside a replayed operation's transaction to undo its applied-mark."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    applied: int = 0
    skipped: int = 0  # already applied by an earlier (interrupted) replay
    waiting: int = 0  # operations whose call is not in the database yet: kept in waiting.jsonl
    rejected: int = 0  # unreadable lines, refused operations, waits past the bound: in rejected.jsonl
    files: int = 0

    def __add__(self, other: ReplayResult) -> ReplayResult:
        return ReplayResult(
            self.applied + other.applied, self.skipped + other.skipped,
            self.waiting + other.waiting, self.rejected + other.rejected, self.files + other.files,
        )


@dataclass(slots=True)
class Journal:
    directory: Path
    #: how long an operation may wait for its call (seconds since it first waited)
    max_wait: float = MAX_WAIT_SECONDS
    #: the clock of waiting bounds (an input, for tests)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    #: lines waiting for the next group commit, with the futures of their writers
    _queued: list[tuple[bytes, asyncio.Future[None]]] = field(default_factory=list, repr=False)
    _flusher: asyncio.Task[None] | None = field(default=None, repr=False)
    _aside: bool = field(default=False, repr=False)
    #: fsyncs done and entries written (group commit: many entries per fsync under load)
    syncs: int = 0
    written: int = 0

    @property
    def live_path(self) -> Path:
        return self.directory / LIVE_NAME

    def pending_files(self) -> list[Path]:
        if not self.directory.exists():
            return []
        aside = sorted(self.directory.glob(f"calls.*{REPLAY_SUFFIX}"))
        live = self.live_path
        if live.exists() and live.stat().st_size > 0:
            aside.append(live)
        return aside

    def __post_init__(self) -> None:
        # files set aside by a replay that did not finish (a crash): pending until replayed
        self._aside = self.directory.exists() and any(self.directory.glob(f"calls.*{REPLAY_SUFFIX}"))

    def has_pending(self) -> bool:
        """Cheap check (one stat) run by every flow before writing."""
        if self._queued or self._aside:
            return True
        try:
            return os.stat(self.live_path).st_size > 0
        except FileNotFoundError:
            return False

    def needs_replay(self) -> bool:
        """Something to replay: pending operations, or operations waiting for their call."""
        return (self.has_pending() or (self.directory / WAITING_NAME).exists()
                or (self.directory / (WAITING_NAME + RETRY_SUFFIX)).exists())

    @staticmethod
    def encode(entry: dict[str, Any]) -> bytes:
        return (json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()

    def append(self, entry: dict[str, Any]) -> None:
        """Append one operation durably (returns after fsync). Blocking: for scripts and
        tests; flows on the event loop use :meth:`append_async`."""
        self._write(self.encode(entry))

    async def append_async(self, entry: dict[str, Any]) -> None:
        """Append durably without blocking the event loop. Concurrent appends share one
        write and one fsync (group commit), so an outage under load does not turn into
        one fsync per call. Returns once the entry is on disk."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((self.encode(entry), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="call-journal-flush")
        await future

    async def _flush(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await asyncio.to_thread(self._write, b"".join(line for line, _ in batch))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.written += len(batch)
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    def _write(self, line: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            # read-write: the last byte is checked for a line boundary
            fd = os.open(self.live_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # a replay may have renamed the file between our open and our lock:
                # then write to the new live file instead
                try:
                    same = os.stat(self.live_path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    continue
                # start on a line boundary: a line torn by a crash must not swallow this one
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
                self.syncs += 1
                return
            finally:
                os.close(fd)  # also releases the lock

    def _rotate(self) -> None:
        """Move the live file aside (under its lock) so writers start a new one."""
        if not self.live_path.exists():
            return
        fd = os.open(self.live_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size == 0:
                return
            target = self.directory / f"calls.{time.time_ns():020d}{REPLAY_SUFFIX}"
            os.rename(self.live_path, target)
            _fsync_dir(self.directory)
        finally:
            os.close(fd)

    async def replay(self, store: CallStore) -> ReplayResult:
        """Apply everything journaled, in order. Raises :class:`DatabaseDown` (with the
        work done so far kept) when the database goes away again."""
        async with self._lock:
            self._aside = True  # set-aside files exist from here until they are all applied
            total = ReplayResult()
            retrying = self._take_waiting()  # what waited before this replay, tried after it
            # keep going until the live file stays empty: flows keep journaling while
            # older entries are pending, so order holds across the switch-back
            for _ in range(100):
                self._rotate()
                files = sorted(self.directory.glob(f"calls.*{REPLAY_SUFFIX}")) if self.directory.exists() else []
                if not files:
                    self._aside = False
                    break
                for path in files:
                    total = total + await self._replay_file(store, path)
            # then what waited for its call: the files above may have brought the start
            if retrying is not None:
                total = total + await self._replay_file(store, retrying)
            if total.files:
                log.info(
                    "journal replayed: %d applied, %d already in, %d waiting for their call, %d rejected, %d file(s)",
                    total.applied, total.skipped, total.waiting, total.rejected, total.files,
                )
            return total

    def _take_waiting(self) -> Path | None:
        """Set the waiting operations aside for this replay (new waits go to a new file)."""
        waiting = self.directory / WAITING_NAME
        retrying = self.directory / (WAITING_NAME + RETRY_SUFFIX)
        if retrying.exists():  # a retry interrupted by a crash: finish it first
            return retrying
        if not waiting.exists():
            return None
        os.rename(waiting, retrying)
        _fsync_dir(self.directory)
        return retrying

    async def _replay_file(self, store: CallStore, path: Path) -> ReplayResult:
        applied = skipped = waiting = rejected = 0
        with path.open("rb") as fh:
            raw_lines = fh.read().splitlines()
        for raw in raw_lines:
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                if not isinstance(entry, dict) or not {"id", "op", "uid", "at", "data"} <= entry.keys():
                    raise ValueError("not a journal entry")
            except ValueError:
                rejected += 1
                self._reject(raw)
                continue
            assert isinstance(entry, dict)
            try:
                async with store.connection(force=True) as conn:
                    async with conn.transaction():
                        fresh = await conn.fetchval(
                            """INSERT INTO call_journal_applied (entry_id, call_uid, op, written_at)
                               VALUES ($1, $2, $3, $4) ON CONFLICT (entry_id) DO NOTHING RETURNING 1""",
                            entry["id"], entry["uid"], entry["op"], _parse_ts(entry["at"]),
                        )
                        if not fresh:
                            skipped += 1
                            continue
                        if await apply_op(conn, entry, live=False) is None:
                            raise _CallNotThere  # undo the applied-mark: it is tried again later
                        applied += 1
            except _CallNotThere:
                if self._wait(entry):
                    waiting += 1
                else:
                    rejected += 1
            except DatabaseDown:
                raise  # keep the file; the next replay continues from here
            except Exception as exc:
                # a poison entry (bad data, a bug) must not block every record behind it
                log.exception("journal: entry %s (%s %s) cannot be applied", entry["id"], entry["op"], entry["uid"])
                rejected += 1
                self._reject(raw, f"{type(exc).__name__}: {exc}", entry)
        path.unlink()  # noqa: ASYNC240 (a local file, like the fsync'd appends)
        _fsync_dir(self.directory)
        store.mark_up()
        return ReplayResult(applied, skipped, waiting, rejected, 1)

    def _wait(self, entry: dict[str, Any]) -> bool:
        """Keep an operation whose call is not in the database for a later replay;
        False (and kept in rejected.jsonl) once it has waited longer than ``max_wait``."""
        now = self.clock()
        since = entry.get("waiting_since")
        try:
            first = datetime.fromisoformat(since) if isinstance(since, str) else now
        except ValueError:
            first = now
        waited = (now - first).total_seconds()
        if waited > self.max_wait:
            self._reject(self.encode(entry).rstrip(b"\n"),
                         f"its call {entry['uid']} is not in the database after waiting {waited:.0f} s "
                         f"(bound {self.max_wait:.0f} s)", entry)
            return False
        self._append_private(WAITING_NAME, self.encode({**entry, "waiting_since": first.isoformat()}))
        return True

    def _reject(self, raw: bytes, reason: str = "unreadable", entry: dict[str, Any] | None = None) -> None:
        """Keep a line that cannot be applied: as it was when unreadable, else the entry
        with ``rejected: {reason, at}`` (still replayable by moving it back)."""
        log.error("journal: %s; line kept in %s: %r", reason, REJECTED_NAME, raw[:200])
        if entry is not None:
            raw = self.encode({**entry, "rejected": {"reason": reason, "at": self.clock().isoformat()}})
        self._append_private(REJECTED_NAME, raw if raw.endswith(b"\n") else raw + b"\n")

    def _append_private(self, name: str, line: bytes) -> None:
        """Append durably to a file of this directory readable by its owner only (the
        entries hold callers' numbers), tightening one an older version left open."""
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse_ts(value: Any) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(str(value))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CallWriter:
    """Applies call-record operations directly, or journals them (outage, or older
    operations still pending). Returns the call id when it went to the database."""

    def __init__(self, store: CallStore, journal: Journal) -> None:
        self.store = store
        self.journal = journal
        self.journaled = 0

    async def write(self, entry: dict[str, Any], conn: asyncpg.Connection | None = None) -> int | None:
        if conn is not None:
            return await apply_op(conn, entry)
        # order per call: a later record of a call waits behind the journal (its start may
        # be there); a call's first record cannot, so it goes straight in
        behind = entry["op"] != "start" and self.journal.has_pending()
        if self.store.believed_up and not behind:
            try:
                async with self.store.connection() as c:
                    if entry["op"] in SINGLE_STATEMENT_OPS:  # atomic on its own: no BEGIN/COMMIT
                        return await apply_op(c, entry)
                    async with c.transaction():
                        return await apply_op(c, entry)
            except DatabaseDown:
                pass
            except Exception:  # a record is never dropped: the replay retries or sets it aside
                log.exception("call %s: %s could not be applied; journaled", entry["uid"], entry["op"])
        await self.journal.append_async(entry)
        self.journaled += 1
        return None
