"""Outbound HTTP delivery, one way for every sender (the upstream push, the
notification gateway): a POST of a JSON body, optionally signed like ingest
(HMAC-SHA256 over method, path, timestamp and body hash), classified as delivered,
**unavailable** (connection refused, timeout, 408/429/502/503/504: nothing is wrong
with the message, wait and resend) or **refused** (any other non-2xx: the message
counts an attempt), and the capped exponential backoff between tries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

UNAVAILABLE_STATUS = frozenset({408, 429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    kind: str = "ok"  # ok | unavailable | refused
    error: str = ""


def backoff(base: float, cap: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: base, 2·base, 4·base … ≤ cap."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))


def signed_headers(body: bytes, url: str, idempotency_key: str, key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    if key:
        ts = str(int(time.time()))
        path = urlsplit(url).path or "/"
        text = "\n".join(("POST", path, ts, hashlib.sha256(body).hexdigest())).encode()
        headers["X-Hotline-Timestamp"] = ts
        headers["X-Hotline-Signature"] = "v1=" + hmac.new(key.encode(), text, hashlib.sha256).hexdigest()
    return headers


async def post_json(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            text = (await resp.text())[:500]
            if 200 <= resp.status < 300:
                return SendResult(True)
            kind = "unavailable" if resp.status in UNAVAILABLE_STATUS else "refused"
            return SendResult(False, kind, f"HTTP {resp.status}: {text}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return SendResult(False, "unavailable", f"{type(exc).__name__}: {exc}")


def public_endpoint(url: str) -> str | None:
    """The endpoint without credentials or query (for status pages and logs)."""
    if not url:
        return None
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


class DeliveryWorker(Protocol):
    async def run(self, stopping: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


class DeliveryService:
    """A delivery worker (the upstream push, the notification gateway) as a node service
    of role ``workers``: one task running ``worker.run`` until stopped, then the
    worker's HTTP session closed. Subclasses set ``name`` and ``order`` and call
    :meth:`launch` from ``start``."""

    role = "workers"

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.worker: DeliveryWorker | None = None
        self.task: asyncio.Task[None] | None = None

    def launch(self, worker: DeliveryWorker, task_name: str) -> None:
        self.worker = worker
        self.task = asyncio.create_task(worker.run(self.stopping), name=task_name)

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.worker is not None:
            await self.worker.close()
