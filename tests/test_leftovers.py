"""The suite's own check that ``make test`` leaves no process behind (tests/leftovers.py,
run by tests/conftest.py at the end of the session)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import leftovers


def _marker() -> str:
    return os.environ[leftovers.MARKER]


def test_a_child_still_running_is_found_and_a_stopped_one_is_not() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        found = leftovers.find(_marker(), None)
        assert child.pid in [p.pid for p in found]
    finally:
        child.kill()
        child.wait()
    assert child.pid not in [p.pid for p in leftovers.find(_marker(), None)]


def test_a_daemonised_server_is_found_after_it_left_its_parent(tmp_path: Path) -> None:
    """pg_ctl and Asterisk detach: the server is re-parented to init, not a child any more."""
    pidfile = tmp_path / "daemon.pid"
    subprocess.run(["sh", "-c", f"sleep 30 >/dev/null 2>&1 & echo $! > {pidfile}"], check=True)
    pid = int(pidfile.read_text())
    try:
        found = {p.pid: p for p in leftovers.find(_marker(), None)}
        assert pid in found and found[pid].why == "started by this test session"
    finally:
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # reaped by init
        if pid not in [p.pid for p in leftovers.find(_marker(), None)]:
            break
        time.sleep(0.02)
    assert pid not in [p.pid for p in leftovers.find(_marker(), None)]


def test_a_process_of_another_session_is_not_ours(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"], env={**os.environ, leftovers.MARKER: "another-session"},
                             start_new_session=True)
    try:
        # a child of ours by ancestry, but marked by another session: still found as our child
        assert other.pid in [p.pid for p in leftovers.find(_marker(), None)]
        # seen from a process that is not its ancestor, with another marker: not ours
        assert other.pid not in [p.pid for p in leftovers.find(_marker(), None, me=4_000_000)]
    finally:
        other.kill()
        other.wait()
