"""Call recording (全程录音): the generated dialplan records every line's calls before the
AGI runs, the setting is checked, and a node finds a call's file from its record."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hotline.calls.dialplan import DialplanOptions, generate_extensions
from hotline.calls.jobs import JOB_ID, prune_recordings
from hotline.calls.recordings import find_recording, recording_relpath
from hotline.calls.settings import CallSettings
from hotline.config import Settings
from hotline.errors import ConfigError
from hotline.registry import Registry
from hotline.scheduler import build_scheduler


def _extensions(registry: Registry, recordings_dir: str) -> dict[str, list[str]]:
    """Each line's priorities in [hotline-incoming], by number."""
    text = generate_extensions(registry, DialplanOptions("agi://127.0.0.1:4573", recordings_dir=recordings_dir))
    body = text.split("\n[hotline-incoming]\n", 1)[1].split("\n[", 1)[0]
    lines: dict[str, list[str]] = {}
    current = ""
    for raw in body.splitlines():
        if raw.startswith("exten => "):
            current = raw.split("=> ", 1)[1].split(",", 1)[0]
            lines[current] = [raw]
        elif raw.startswith(" same => ") and current:
            lines[current].append(raw)
    return lines


def test_every_line_is_recorded_before_the_agi_decides(registry: Registry) -> None:
    lines = _extensions(registry, "/var/spool/hotline/recordings")
    assert len(lines) == len(registry) == 33
    for number, steps in lines.items():
        record = [i for i, s in enumerate(steps) if "MixMonitor(" in s]
        agi = [i for i, s in enumerate(steps) if "AGI(agi://" in s]
        assert len(record) == 1 and record[0] < agi[0], (number, steps)
        assert steps[record[0]].endswith(
            "MixMonitor(/var/spool/hotline/recordings/${STRFTIME(${EPOCH},UTC,%Y/%m/%d)}/${UNIQUEID}.wav,b)")


def test_no_recording_directory_no_recording(registry: Registry) -> None:
    assert not any("MixMonitor" in s for steps in _extensions(registry, "").values() for s in steps)


@pytest.mark.parametrize(("value", "problem"), [
    ("recordings", "absolute"),
    ("/srv/rec,b", "cannot contain"),
    ("/srv/${EVIL}", "cannot contain"),
])
def test_a_bad_recordings_dir_is_refused_naming_it(settings: Settings, value: str, problem: str) -> None:
    extra = {k: dict(v) for k, v in settings.extra.items()}
    extra.setdefault("calls", {})["recordings_dir"] = value
    with pytest.raises(ConfigError) as caught:
        CallSettings.from_settings(replace(settings, extra=extra))
    assert caught.value.field == "calls.recordings_dir"
    assert problem in str(caught.value) and repr(value) in str(caught.value)


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFF")
    return path


def test_the_file_is_found_by_the_records_uid_and_start(tmp_path: Path) -> None:
    started = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert recording_relpath("1764581400.17", started) == "2026/12/01/1764581400.17.wav"
    path = _wav(tmp_path / "2026/12/01/1764581400.17.wav")
    assert find_recording(tmp_path, "1764581400.17", started) == path
    # Asterisk's date was taken a few ms before the record's start, across UTC midnight
    late = _wav(tmp_path / "2026/11/30/1764547199.5.wav")
    assert find_recording(tmp_path, "1764547199.5", datetime(2026, 12, 1, 0, 0, 0, 3000, tzinfo=UTC)) == late
    # the same instant told in another zone names the same UTC day
    assert find_recording(tmp_path, "1764581400.17", started.astimezone(timezone(timedelta(hours=8)))) == path
    assert find_recording(tmp_path, "1764581400.18", started) is None
    assert find_recording(tmp_path, "1764581400.17", None) is None


@pytest.mark.parametrize("uid", ["../../etc/passwd", "..", "a/b", "", "x" * 151, ".hidden"])
def test_a_uid_that_is_not_asterisks_never_names_a_file(tmp_path: Path, uid: str) -> None:
    started = datetime(2026, 12, 1, tzinfo=UTC)
    assert find_recording(tmp_path, uid, started) is None
    with pytest.raises(ValueError, match="cannot name a recording"):
        recording_relpath(uid, started)


def test_recordings_past_the_kept_days_are_deleted_a_day_at_a_time(tmp_path: Path) -> None:
    for day in ("2026/10/31", "2026/11/01", "2026/11/02", "2026/12/01"):
        _wav(tmp_path / day / "1.wav")
    _wav(tmp_path / "2025/12/31" / "2.wav")
    (tmp_path / "2026/11/notes").mkdir()  # not a day: left alone
    (tmp_path / "README").write_text("recordings")
    removed = prune_recordings(tmp_path, keep_days=30, today=date(2026, 12, 1))  # the cutoff is 2026-11-01
    assert removed == ["2025/12/31", "2026/10/31"]
    assert not (tmp_path / "2025").exists() and not (tmp_path / "2026/10").exists()  # emptied and before the cutoff
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.wav")) == [
        "2026/11/01/1.wav", "2026/11/02/1.wav", "2026/12/01/1.wav"]
    assert (tmp_path / "2026/11/notes").is_dir() and (tmp_path / "README").exists()
    assert prune_recordings(tmp_path, keep_days=0, today=date(2030, 1, 1)) == []  # 0: keep everything
    assert (tmp_path / "2026/11/01/1.wav").exists()


def test_the_pruning_job_runs_only_when_the_office_asks_for_it(runtime: Any, settings: Settings,
                                                               tmp_path: Path) -> None:
    assert JOB_ID not in build_scheduler(runtime).job_ids  # the shipped configuration keeps recordings
    extra = {k: dict(v) for k, v in settings.extra.items()}
    extra.setdefault("calls", {}).update(recordings_dir=str(tmp_path), recordings_keep_days=180)
    runtime.settings = replace(settings, extra=extra)
    assert JOB_ID in build_scheduler(runtime).job_ids
    extra["calls"]["recordings_keep_days"] = -1
    with pytest.raises(ConfigError) as caught:
        CallSettings.from_settings(replace(settings, extra=extra))
    assert caught.value.field == "calls.recordings_keep_days"
