"""The FastAGI server: ``asyncio.start_server``, one task per session, script names
routed to the entry points registered in :mod:`hotline.agi.handlers`.

Each session is bounded: the header block and every command by
``agi.command_timeout``, the whole session by ``agi.session_timeout``, every
line by ``agi.max_line_bytes``. Whatever a peer does (garbage, oversized lines,
silence, a disconnect mid-flow, an unknown script), the session ends with a
logged outcome and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram

from hotline.agi.allow import AllowList
from hotline.agi.handlers import Handler, load_handlers
from hotline.agi.protocol import AgiError, AgiProtocolError
from hotline.agi.session import CommandTimeout, FastAgiSession, read_request
from hotline.calls.channel import ChannelHungUp
from hotline.calls.context import CallContext
from hotline.config import AgiSettings

log = logging.getLogger("hotline.agi")

SESSIONS = PromCounter("hotline_agi_sessions_total", "FastAGI sessions by script and outcome", ["script", "outcome"])
SESSION_SECONDS = Histogram(
    "hotline_agi_session_seconds", "FastAGI session duration", ["script"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30),
)
ACTIVE = Gauge("hotline_agi_sessions_active", "FastAGI sessions in progress")


class FastAgiServer:
    def __init__(
        self, ctx: CallContext, settings: AgiSettings, handlers: dict[str, Handler] | None = None,
        allow: AllowList | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.handlers = handlers if handlers is not None else load_handlers()
        #: only the PBX may open sessions (FastAGI has no authentication)
        self.allow = allow if allow is not None else AllowList.from_settings(
            settings.allowed_hosts, ctx.calls.ami_host)
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self.outcomes: Counter[str] = Counter()
        self.port: int | None = None
        self.host = settings.host
        #: the metrics' label children this server uses, remembered (``labels()`` takes a
        #: lock and builds its key on every call; a node sees a handful of script/outcome pairs)
        self._children: dict[tuple[Any, ...], Any] = {}

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        self.host = host or self.settings.host
        self._server = await asyncio.start_server(
            self._on_connect,
            self.host,
            self.settings.port if port is None else port,
            limit=self.settings.max_line_bytes,
            backlog=1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%s (%d entry points; sessions from %s)", self.host, self.port,
                 len(self.handlers), ", ".join(str(n) for n in self.allow.networks) or "nowhere")

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    @property
    def active(self) -> int:
        return len(self._sessions)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting; let sessions in flight finish within ``grace``; cancel the rest."""
        if self._server is not None:
            self._server.close()
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not self.allow.allows(peer[0] if isinstance(peer, tuple) and peer else ""):
            self.allow.refuse(str(peer[0] if isinstance(peer, tuple) and peer else peer))
            self.outcomes["refused"] += 1
            writer.transport.abort()  # closed at once: nothing read, nothing answered
            return
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        ACTIVE.inc()
        try:
            await self._serve(reader, writer)
        finally:
            ACTIVE.dec()
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):  # (no extra task, unlike wait_for)
                    await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.perf_counter()
        script = "-"
        outcome = "ok"
        peer = writer.get_extra_info("peername")
        session: FastAgiSession | None = None
        loop = asyncio.get_running_loop()
        try:
            # one timer for the session: the header block's limit first, then the session's
            session_deadline = loop.time() + self.settings.session_timeout
            async with asyncio.timeout_at(
                min(loop.time() + self.settings.command_timeout, session_deadline)
            ) as limit:
                request = await read_request(reader)
                limit.reschedule(session_deadline)
                script = request.script or "-"
                handler = self.handlers.get(request.script)
                if handler is None:
                    outcome = "unknown_script"
                    log.warning(
                        "FastAGI: unknown script %r from %s (uniqueid %s); the dialplan falls back",
                        request.script[:80], peer, request.uniqueid[:80],
                    )
                    script = "<unknown>"
                    return
                session = FastAgiSession(reader, writer, request, command_timeout=self.settings.command_timeout)
                await handler(self.ctx, session)
                if session.truncated:
                    log.warning("FastAGI %s from %s: %s", script, peer, "; ".join(session.truncated[:3]))
                if session.timed_out:
                    outcome = "timeout"
                    log.warning("FastAGI %s from %s: a command went unanswered; session ended", script, peer)
                elif session.hung_up:
                    outcome = "hangup"
        except TimeoutError:
            outcome = "timeout"
            log.warning("FastAGI %s from %s: session timed out (header, command or session limit)", script, peer)
        except CommandTimeout as exc:
            outcome = "timeout"
            log.warning("FastAGI %s from %s: %s", script, peer, exc)
        except ChannelHungUp:
            outcome = "hangup"
        except AgiProtocolError as exc:
            outcome = "protocol_error"
            log.warning("FastAGI %s from %s: protocol error: %s", script, peer, exc)
        except AgiError as exc:
            outcome = "agi_error"
            log.warning("FastAGI %s from %s: %s", script, peer, exc)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "error"
            log.exception("FastAGI %s from %s: handler failed", script, peer)
        finally:
            if session is not None:
                session.close()
            self.outcomes[outcome] += 1
            self._child(SESSIONS, script, outcome).inc()
            self._child(SESSION_SECONDS, script).observe(time.perf_counter() - started)
