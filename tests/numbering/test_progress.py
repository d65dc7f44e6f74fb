"""The public progress look-up: a valid number + phone suffix answers with state, unit
name and dates only; anything else is refused identically; the limits per client
address and per ticket number hold."""

from datetime import datetime, timedelta

import asyncpg
import pytest
from tickets_support import LEAD, Cast, new_ticket

from hotline.calendar.core import SHANGHAI
from hotline.errors import TooManyRequests
from hotline.numbering.progress import LookupRefused, ProgressSettings, look_up, prune
from hotline.tickets.workflow import apply

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
async def ticket(pool: asyncpg.Pool, cast: Cast) -> str:
    async with pool.acquire() as conn:
        t = await new_ticket(conn, cast, at=NOW - timedelta(hours=2), caller_number="13800005678",
                             contact_number="13911112222")
        await apply(conn, t, "dispatch", cast.agent, {"unit_code": LEAD}, at=NOW - timedelta(hours=1))
        return await conn.fetchval("SELECT number FROM tickets WHERE id = $1", t)


async def test_a_valid_number_and_suffix_answer_with_no_personal_data(client, ticket: str) -> None:  # noqa: ANN001
    for suffix in ("5678", "2222"):  # the caller's number or the contact number
        resp = await client.post("/api/v1/public/progress", json={"number": ticket.lower(), "phone_suffix": suffix})
        assert resp.status == 200, await resp.text()
        answer = (await resp.json())["ticket"]
        assert set(answer) == {"number", "state", "state_name", "unit_name", "created_at", "dispatched_at",
                               "closed_at"}
        assert (answer["number"], answer["state_name"], answer["unit_name"]) == (ticket, "已转办",
                                                                                "综合行政执法局（城管）")
        assert "5678" not in str({k: v for k, v in answer.items() if k != "number"})
    page = await client.get("/progress")
    assert page.status == 200 and "工单进度查询" in await page.text()


async def test_every_wrong_input_is_refused_identically(client, ticket: str) -> None:  # noqa: ANN001
    bodies = [{"number": ticket, "phone_suffix": "0000"},            # wrong digits
              {"number": "ZS2001010001", "phone_suffix": "5678"},    # no such ticket
              {"number": ticket, "phone_suffix": "56789"},           # malformed suffix
              {"number": 12345, "phone_suffix": "5678"},             # malformed number
              {"phone_suffix": "5678"}]                              # missing number
    answers = set()
    for body in bodies:
        resp = await client.post("/api/v1/public/progress", json=body)
        answers.add((resp.status, await resp.text()))
    for raw in (b"not json", b"[1, 2]"):
        resp = await client.post("/api/v1/public/progress", data=raw, headers={"Content-Type": "application/json"})
        answers.add((resp.status, await resp.text()))
    assert len(answers) == 1, answers
    status, text = answers.pop()
    assert status == 404 and "后四位" in text


async def test_the_limits_per_client_and_per_number_hold(pool: asyncpg.Pool, ticket: str) -> None:
    cfg = ProgressSettings(window_minutes=15, per_client=4, per_number=3)
    async with pool.acquire() as conn:
        # per number: three refused guesses from three addresses, then even the right digits wait
        for i, guess in enumerate(("0001", "0002", "0003")):
            with pytest.raises(LookupRefused):
                await look_up(conn, cfg, number=ticket, suffix=guess, client=f"10.0.0.{i}", now=NOW)
        with pytest.raises(TooManyRequests):
            await look_up(conn, cfg, number=ticket, suffix="5678", client="10.0.0.9", now=NOW)
        # after the window it answers again
        later = NOW + timedelta(minutes=16)
        assert (await look_up(conn, cfg, number=ticket, suffix="5678", client="10.0.0.9", now=later))["number"] \
            == ticket
        # per client: four look-ups (right or wrong) in the window, the fifth is refused
        for _ in range(3):
            await look_up(conn, cfg, number=ticket, suffix="5678", client="10.0.1.1", now=later)
        with pytest.raises(LookupRefused):
            await look_up(conn, cfg, number="ZS2001010001", suffix="5678", client="10.0.1.1", now=later)
        with pytest.raises(TooManyRequests):
            await look_up(conn, cfg, number=ticket, suffix="5678", client="10.0.1.1", now=later)
        assert await prune(conn, ProgressSettings(retention_days=1), later + timedelta(days=2)) == 10


async def test_the_limit_holds_over_http(client, ticket: str) -> None:  # noqa: ANN001
    statuses = []
    for _ in range(21):  # [progress] per_client = 20 (config/hotline.toml)
        resp = await client.post("/api/v1/public/progress", json={"number": ticket, "phone_suffix": "5678"})
        statuses.append(resp.status)
    assert statuses == [200] * 20 + [429]
    assert (await resp.json())["error"]["code"] == "rate_limited"
