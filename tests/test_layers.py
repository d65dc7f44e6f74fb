"""The layer contract (setup.cfg, ``[importlinter]``) holds for the tree, and it
really catches what it forbids: a copy of the package with a domain module that
imports ``aiohttp.web`` or ``hotline.web`` (or a new package cycle) is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_the_layer_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "hotline", tmp_path / "hotline",
                    ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "import_contracts.py", tmp_path / "tests" / "import_contracts.py")
    return tmp_path


def _inject(copy: Path, module: str, line: str) -> None:
    path = copy / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_unchanged_copy_passes(copy: Path) -> None:
    result = _lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "line", "named"), [
    ("hotline/tickets/workflow.py", "from aiohttp import web  # noqa",
     "hotline.tickets.workflow is not allowed to import aiohttp.web"),
    ("hotline/kb/__init__.py", "import aiohttp.web  # noqa", "hotline.kb is not allowed to import aiohttp.web"),
    ("hotline/calls/store.py", "from hotline.web.util import json_response  # noqa", "hotline.calls"),
    ("hotline/console/seats.py", "import hotline.web.app  # noqa", "hotline.console"),
    ("hotline/db/pool.py", "from hotline.tickets import workflow  # noqa", "hotline.db"),
    ("hotline/feed/changes.py", "from hotline.upstream import worker  # noqa", "cycle"),
])
def test_a_forbidden_import_breaks_the_contract(copy: Path, module: str, line: str, named: str) -> None:
    _inject(copy, module, line)
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert named.lower() in result.stdout.lower(), result.stdout
