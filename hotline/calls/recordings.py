"""Call recordings (全程录音): where Asterisk writes them and how a node finds one.

The generated dialplan starts ``MixMonitor(<recordings_dir>/<YYYY>/<MM>/<DD>/<UNIQUEID>.wav,b)``
on the citizen's channel before anything else (:func:`mixmonitor`), so every call is
recorded whatever the backend does: routed by the AGI, or sent to the 12345 queue
because the backend is down. Option ``b`` records only while the channel is bridged:
the conversation with the agent, the expert or the sub-centre, not the queue's wait.
The date is the call's start in UTC (``STRFTIME(${EPOCH},UTC,...)``), so the node
needs no knowledge of the PBX host's zone; the file is named after the channel's
UNIQUEID, which is the call record's ``call_uid``.

A recording is never copied into the database: the node reads it from the same path
(the PBX's recordings directory, local or on shared storage). Which call has one is
what the file system says (:func:`find_recording`), so a call recorded during a
backend outage, whose record the CDR import made later, has its recording too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: a call uid as Asterisk makes it (``1733012345.42``, ``pbx1-1733012345.42``): anything
#: else never names a file (a uid is input from the PBX, never a path)
_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$")
DATE_DIRS = "%Y/%m/%d"
SUFFIX = ".wav"


def mixmonitor(recordings_dir: str) -> str:
    """The dialplan application that records the citizen's channel (MixMonitor creates
    the date directories itself)."""
    return f"MixMonitor({recordings_dir.rstrip('/')}/${{STRFTIME(${{EPOCH}},UTC,{DATE_DIRS})}}/${{UNIQUEID}}{SUFFIX},b)"


def valid_uid(call_uid: str) -> bool:
    return bool(_UID.match(call_uid)) and ".." not in call_uid


def recording_relpath(call_uid: str, started_at: datetime) -> str:
    """``YYYY/MM/DD/<uid>.wav`` for a call that started at ``started_at``."""
    if not valid_uid(call_uid):
        raise ValueError(f"call uid {call_uid!r} cannot name a recording")
    return f"{started_at.astimezone(UTC).strftime(DATE_DIRS)}/{call_uid}{SUFFIX}"


def find_recording(root: Path, call_uid: str, started_at: datetime | None) -> Path | None:
    """The call's recording file under ``root``, or None. The day of ``started_at``
    first, then the days either side: Asterisk took the date when the channel entered
    the dialplan, the record's start may be a few milliseconds off (across midnight, a
    day) or come from another clock."""
    if started_at is None or not valid_uid(call_uid):
        return None
    for days in (0, -1, 1):
        path = root / recording_relpath(call_uid, started_at + timedelta(days=days))
        if path.is_file():
            return path
    return None
