"""Finding 8: the signature is checked before the rate limit, and a 401 says the same
thing whether or not the source exists."""

from __future__ import annotations

import json

from hotline.ingest.keys import add_source
from hotline.ingest.signing import sign_headers

PATH = "/api/v1/ingest/calls"


async def test_forged_requests_do_not_use_up_a_sources_quota(client, pool, runtime) -> None:
    _, key = await add_source(pool, runtime.settings, "tax-sub", "纳税缴费服务分中心",
                              hotline_numbers=["12366"], rate_per_minute=1)
    body = json.dumps({"records": []}).encode()
    for _ in range(40):  # more than rate_burst: an attacker who knows only the code
        resp = await client.post(PATH, data=body, headers=sign_headers("tax-sub", "guessed", "POST", PATH, body))
        assert resp.status == 401
    resp = await client.post(PATH, data=body, headers={"Content-Type": "application/json",
                                                       **sign_headers("tax-sub", key, "POST", PATH, body)})
    assert resp.status not in (401, 429), await resp.text()  # past the signature and the rate limit


async def test_the_refusal_is_the_same_for_known_and_unknown_sources(client, pool, runtime) -> None:
    await add_source(pool, runtime.settings, "tax-sub", "纳税缴费服务分中心", hotline_numbers=["12366"])
    body = json.dumps({"records": []}).encode()
    known = await client.post(PATH, data=body, headers=sign_headers("tax-sub", "guessed", "POST", PATH, body))
    unknown = await client.post(PATH, data=body, headers=sign_headers("no-such", "guessed", "POST", PATH, body))
    assert known.status == unknown.status == 401
    assert (await known.json()) == (await unknown.json())
