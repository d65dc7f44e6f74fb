"""Shared test helpers (importable from any test module: ``from support import ...``)."""

import asyncio
import contextlib
import inspect
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from hotline.config import PROJECT_ROOT

TEST_PASSWORD = "correct-horse-battery"
REGISTRY_FILE = PROJECT_ROOT / "config" / "hotlines.yaml"


def three_mistakes() -> str:
    """The shipped registry with three different mistakes: an unknown mode, a
    duplicate number and a sub-centre without a dial target."""
    text = REGISTRY_FILE.read_text(encoding="utf-8")
    text = text.replace("    mode: merged\n", "    mode: mergd\n", 1)
    text = text.replace('number: "12336"', 'number: "12349"', 1)
    text = text.replace("    dial_target: PJSIP/12366@subcenter-tax\n", "", 1)
    return text


#: a bound on waiting for ``hotline serve`` to start, not a performance assertion
STARTUP_LIMIT = 120


class Node:
    """A ``hotline serve`` process started by a test, with what it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, output: list[str]) -> None:
        self.proc, self.port, self.output = proc, port, output

    @property
    def text(self) -> str:
        return "".join(self.output)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> str:
        """SIGTERM, and what it printed until it ended (killed when it does not within 60 s)."""
        if self.proc.returncode is not None:
            return self.text
        self.proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = await asyncio.wait_for(self.proc.communicate(), 60)
        except TimeoutError:
            self.proc.kill()
            rest, _ = await self.proc.communicate()
        return self.text + rest.decode()


async def start_node(data_dir: Path, *args: str, env: dict[str, str] | None = None,
                     command: Sequence[str] | None = None, cwd: Path | None = None) -> Node:
    """``hotline serve --migrate [args]`` on ``data_dir`` (embedded PostgreSQL), web and
    FastAGI on free ports unless ``env`` says otherwise; returns once it is serving.
    ``command`` runs another ``hotline`` (an installed one) from ``cwd``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    environ.update(HOTLINE_DATA_DIR=str(data_dir), HOTLINE_WEB_PORT="0", HOTLINE_AGI_PORT="0")
    environ.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        *(command or (sys.executable, "-m", "hotline")), "serve", "--migrate", *args, cwd=cwd or PROJECT_ROOT,
        env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    port = None
    async with asyncio.timeout(STARTUP_LIMIT):
        while line := (await proc.stdout.readline()).decode():
            output.append(line)
            if match := re.search(r"web console and API: http://[\d.]+:(\d+)/", line):
                port = int(match.group(1))
            if port and "stop with Ctrl-C" in line:
                return Node(proc, port, output)
    proc.kill()
    await proc.wait()
    raise AssertionError("server did not start:\n" + "".join(output))


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition",
                   interval: float = 0.05) -> Any:
    """The one polling helper: call ``predicate`` (plain or async) until it returns
    something truthy, and return that; fail naming ``what`` and the last value after
    ``timeout`` seconds. A bound, not a measurement: tests never assert on time, and
    never sleep to synchronise (things that happen in real time, like Asterisk or a
    restarting server, are waited for here)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def web_server(runtime: Any) -> AsyncIterator[Any]:
    """The node's web app over ``runtime`` on a real port (aiohttp's TestServer), closed after."""
    from aiohttp.test_utils import TestServer

    from hotline.web import create_app

    server = TestServer(create_app(runtime.settings, runtime.registry, runtime=runtime))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
