"""Follow a file Asterisk appends to (Master.csv, queue_log) like ``tail -F``.

The position (inode, byte offset) is stored in ``ingest_file_offsets`` in the same
transaction as the rows read up to it, so after a restart the follower resumes
exactly where the committed work ends. Rotation (the path now names another
file) is handled by reading the old file to its end first; truncation (the file is
shorter than the offset, e.g. logrotate ``copytruncate``) restarts at 0. When the
stored inode is not the current file's (rotated while we were down), the file is
read from the start: rows are idempotent by content hash, so nothing is doubled.
Only complete lines are consumed; a half-written last line waits for its newline.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import IO
from zoneinfo import ZoneInfo

import asyncpg

from hotline.ingest.cdr import ImportResult, import_lines

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


@dataclass(slots=True)
class FileFollower:
    pool: asyncpg.Pool
    path: str
    kind: str  # cdr_csv | queue_log
    tz: ZoneInfo
    default_line: str = "12345"
    #: seconds a matched CDR start may differ from the AGI's ([ingest] cdr_skew_tolerance)
    skew_tolerance: float = 90.0
    _fh: IO[bytes] | None = field(default=None, repr=False)
    _inode: int | None = None
    #: the last bytes consumed: if the file no longer holds them just before our offset,
    #: it was truncated and rewritten (possibly to the same size) since the last poll
    _tail: bytes = b""
    total: ImportResult = field(default_factory=ImportResult)

    async def _open(self) -> bool:
        try:
            # a local log file, read in bounded chunks; kept open across polls, closed on rotation
            fh = open(self.path, "rb")  # noqa: SIM115, ASYNC230
        except FileNotFoundError:
            return False
        inode = os.fstat(fh.fileno()).st_ino
        stored = await self.pool.fetchrow(
            'SELECT inode, "offset" FROM ingest_file_offsets WHERE path = $1', self.path)
        offset = 0
        if stored is not None and stored["inode"] == inode:
            offset = stored["offset"]
        elif stored is not None:
            log.info("%s is a new file since the last run (rotated): reading it from the start", self.path)
        if offset > os.fstat(fh.fileno()).st_size:
            offset = 0
        fh.seek(offset)
        self._fh, self._inode, self._tail = fh, inode, b""
        return True

    async def poll(self) -> ImportResult:
        """Read and import whatever complete lines were appended; handle rotation."""
        result = ImportResult()
        if self._fh is None and not await self._open():
            return result
        assert self._fh is not None
        if self._rewritten():
            log.warning("%s was truncated: reading it again from the start", self.path)
            self._fh.seek(0)
            self._tail = b""
        result += await self._drain()
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != self._inode:
            result += await self._drain()  # whatever was appended to the old file before the switch
            self._fh.close()
            self._fh = None
            if current is not None and await self._open():
                result += await self._drain()  # a new inode always starts at 0
        self.total += result
        return result

    def _rewritten(self) -> bool:
        assert self._fh is not None
        position = self._fh.tell()
        if os.fstat(self._fh.fileno()).st_size < position:
            return True
        if not self._tail or position < len(self._tail):
            return False
        return os.pread(self._fh.fileno(), len(self._tail), position - len(self._tail)) != self._tail

    async def _drain(self) -> ImportResult:
        result = ImportResult()
        assert self._fh is not None
        while True:
            start = self._fh.tell()
            data = self._fh.read(CHUNK)
            end = data.rfind(b"\n")
            if end < 0:
                self._fh.seek(start)
                return result
            complete = data[: end + 1]
            self._fh.seek(start + len(complete))
            lines = complete.decode("utf-8", errors="replace").splitlines()
            try:
                result += await self._commit(lines, start + len(complete))
            except BaseException:
                self._fh.seek(start)  # nothing was committed: read these lines again next time
                raise
            self._tail = complete[-64:]

    async def _commit(self, lines: list[str], offset: int) -> ImportResult:
        async with self.pool.acquire() as conn, conn.transaction():
            result = await import_lines(conn, self.kind, lines, origin=self.path, tz=self.tz,
                                        default_line=self.default_line, skew_tolerance=self.skew_tolerance)
            await conn.execute(
                """INSERT INTO ingest_file_offsets (path, kind, inode, "offset", updated_at)
                   VALUES ($1, $2, $3, $4, now())
                   ON CONFLICT (path) DO UPDATE SET kind = $2, inode = $3, "offset" = $4, updated_at = now()""",
                self.path, self.kind, self._inode, offset,
            )
        return result

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
