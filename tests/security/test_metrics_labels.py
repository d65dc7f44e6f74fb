"""Finding 2: nothing an unauthenticated client sends becomes a Prometheus label."""

from __future__ import annotations

import json
import time
import uuid

from prometheus_client import REGISTRY

from hotline.ingest.keys import add_source
from hotline.ingest.signing import sign_headers


def _label_values(metric: str, label: str) -> set[str]:
    return {s.labels[label] for m in REGISTRY.collect() if m.name == metric for s in m.samples if label in s.labels}


async def test_unverified_ingest_sources_are_labelled_unknown(client, pool, runtime) -> None:
    real = f"sub-{uuid.uuid4().hex[:8]}"
    await add_source(pool, runtime.settings, real, "纳税缴费服务分中心", hotline_numbers=["12366"])
    body = json.dumps({"records": []}).encode()
    path = "/api/v1/ingest/calls"
    invented = [f"probe-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for code in invented:  # unsigned, signed with a made-up key, and stale
        await client.post(path, data=body, headers={"X-Hotline-Source": code})
        await client.post(path, data=body, headers=sign_headers(code, "made-up", "POST", path, body))
    await client.post(path, data=body, headers=sign_headers(real, "wrong-key", "POST", path, body,
                                                            timestamp=int(time.time()) - 9999))
    sources = _label_values("hotline_ingest_requests", "source")
    assert not sources & set(invented), sources
    assert real not in sources  # a registered source, but never verified: not a label yet
    assert "unknown" in sources


async def test_invented_http_methods_do_not_become_labels(client) -> None:
    method = f"PROBE{uuid.uuid4().hex[:6].upper()}"
    await client.request(method, "/healthz")
    assert method not in _label_values("hotline_http_requests", "method")
