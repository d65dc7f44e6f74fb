"""The calls' scheduled job: recordings older than ``[calls] recordings_keep_days`` are
deleted, a whole UTC day directory at a time (``<recordings_dir>/YYYY/MM/DD``, as the
dialplan's MixMonitor writes them). Off unless both settings are given: deleting
recordings is the office's decision (many keep them as long as their tickets)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hotline.calls.settings import CallSettings
from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler

log = logging.getLogger(__name__)

JOB_ID = "calls.prune_recordings"


def _numbered(parent: Path, width: int) -> list[Path]:
    """The sub-directories of ``parent`` named by ``width`` digits (a year, a month, a day)."""
    return sorted(p for p in parent.iterdir() if p.is_dir() and len(p.name) == width and p.name.isdigit())


def _day(year: Path, month: Path, day: Path) -> date | None:
    try:
        return date(int(year.name), int(month.name), int(day.name))
    except ValueError:
        return None


def prune_recordings(root: Path, keep_days: int, today: date) -> list[str]:
    """Delete the day directories under ``root`` before ``today - keep_days`` (UTC days);
    returns them as ``YYYY/MM/DD``. Anything that is not such a directory is left alone,
    and so are month and year directories that still hold something or are not wholly
    before the cutoff (MixMonitor may be creating today's directory in them)."""
    if keep_days <= 0 or not root.is_dir():
        return []
    cutoff = today - timedelta(days=keep_days)
    removed: list[str] = []
    for year in _numbered(root, 4):
        for month in _numbered(year, 2):
            for day in _numbered(month, 2):
                when = _day(year, month, day)
                if when is not None and when < cutoff:
                    shutil.rmtree(day)
                    removed.append(f"{year.name}/{month.name}/{day.name}")
            if (int(year.name), int(month.name)) < (cutoff.year, cutoff.month):
                with contextlib.suppress(OSError):  # not empty: something else lives there
                    month.rmdir()
        if int(year.name) < cutoff.year:
            with contextlib.suppress(OSError):
                year.rmdir()
    return removed


async def prune(runtime: Runtime) -> int:
    calls = CallSettings.from_settings(runtime.settings)
    today = datetime.now(UTC).date()
    removed = await asyncio.to_thread(prune_recordings, Path(calls.recordings_dir), calls.recordings_keep_days, today)
    if removed:
        log.info("recordings older than %d days deleted: %s", calls.recordings_keep_days, ", ".join(removed))
    return len(removed)


def register(scheduler: JobScheduler) -> None:
    calls = CallSettings.from_settings(scheduler.runtime.settings)
    if calls.recordings_dir and calls.recordings_keep_days > 0:
        scheduler.add_exclusive_job(JOB_ID, prune, "cron", hour=3, minute=40)
