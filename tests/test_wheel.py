"""The package runs outside a checkout: a wheel built from the tree, installed into a
fresh virtualenv, migrates and serves from a directory that is not the checkout
(default configuration, migrations and seed articles come from inside the package),
and answers /healthz.

The virtualenv gets the wheel itself with ``--no-deps``; its dependencies are made
importable from the test environment's site-packages through a ``.pth`` line, which
comes after the new environment's own site-packages, so ``hotline`` is the wheel's."""

from __future__ import annotations

import asyncio
import shutil
import site
import sys
from pathlib import Path

import aiohttp
from support import start_node

ROOT = Path(__file__).resolve().parent.parent


async def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(*map(str, cmd), cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, f"{cmd}: {out.decode()}"
    return out.decode()


async def test_a_wheel_in_a_clean_virtualenv_migrates_and_serves_outside_the_checkout(tmp_path: Path) -> None:
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = tmp_path / "source"  # what a release is built from; the checkout is left untouched (no build/)
    for name in ("hotline", "config", "migrations", "knowledge_base"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    await _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, source,
               cwd=tmp_path)
    wheel = next(wheels.glob("hotline-*.whl"))
    await _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    (purelib / "zz_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    await _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps",
               wheel, cwd=tmp_path)
    hotline = venv / "bin" / "hotline"
    where = await _run(venv / "bin" / "python", "-c",
                       "import hotline.config as c; print(c.__file__, c.INSTALLED, c.PROJECT_ROOT)", cwd=elsewhere)
    assert str(ROOT / "hotline") not in where and " True " in where, where

    env = {"PATH": "/usr/bin:/bin", "HOTLINE_DATA_DIR": str(tmp_path / "var"), "HOME": str(tmp_path)}
    out = await _run(hotline, "migrate", cwd=elsewhere, env=env)
    assert "0001_registry" in out or "applied" in out.lower(), out
    node = await start_node(tmp_path / "var", "--no-agi", command=[str(hotline)], cwd=elsewhere)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(node.url("/healthz")) as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(node.url("/console/")) as resp:
                assert resp.status == 200  # the console's static files are in the wheel too
    finally:
        await node.stop()
    assert (tmp_path / "var" / "pg").is_dir()  # the data went where HOTLINE_DATA_DIR said
