"""Fixtures for the tests of what sub-centres send (ingest, quality): a registered
sub-centre source with its key, and a client that signs ingest requests like a
sub-centre would. Registered for the whole suite by tests/conftest.py."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hotline.ingest.keys import add_source
from hotline.ingest.signing import sign_headers


@dataclass
class SubCentre:
    code: str
    key: str
    client: TestClient
    #: each send gets its own timestamp (a distinct signature), as a real client's resend would
    last_ts: int = field(default=0)

    async def send(
        self,
        kind: str,
        records: list[dict[str, Any]] | None = None,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        timestamp: int | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        path = f"/api/v1/ingest/{kind}"
        if body is None:
            body = json.dumps({"records": records}, ensure_ascii=False).encode()
        if timestamp is None:
            timestamp = self.last_ts = max(int(time.time()), self.last_ts + 1)
        signed = sign_headers(self.code, key or self.key, "POST", path, body, timestamp=timestamp)
        all_headers = {"Content-Type": content_type, **signed, **(headers or {})}
        return await self.client.post(path, data=body, headers=all_headers)


@pytest.fixture
async def subcentre(pool, runtime, client) -> SubCentre:
    """The tax sub-centre (line 12366), allowed to report on its own line only."""
    _, key = await add_source(pool, runtime.settings, "tax-sub", "纳税缴费服务分中心",
                              hotline_numbers=["12366"], rate_per_minute=6000)
    return SubCentre("tax-sub", key, client)
