"""The seeded month the rates and the assessment are checked against (docs/RATES.md):
tickets of March 2026 for the lead unit and another, each driven through the workflow
at set times. Used by tests/reports/test_rates.py (the hand-computed rates),
tests/assessment/test_assessment.py and tests/console/test_console_assessment.py."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from tickets_support import LEAD, OTHER, Cast, new_ticket

from hotline.calendar.core import SHANGHAI
from hotline.reports.metrics import Period
from hotline.tickets.workflow import apply

MARCH = Period(datetime(2026, 3, 1, tzinfo=SHANGHAI), datetime(2026, 4, 1, tzinfo=SHANGHAI))
APRIL_1 = datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI)


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


@dataclass
class Step:
    action: str
    when: datetime
    data: dict[str, Any]


async def run(conn: asyncpg.Connection, cast: Cast, unit: str, created: datetime, signed: datetime | None,
              callback: tuple[datetime, int, str] | None, *, reopen: bool = False) -> int:
    """A ticket dispatched to ``unit`` at ``created``, signed at ``signed`` (or never),
    replied, approved and called back at ``callback`` = (when, satisfaction, resolution)."""
    ticket = await new_ticket(conn, cast, at=created)
    await apply(conn, ticket, "dispatch", cast.agent, {"unit_code": unit}, at=created)
    if signed is None:
        return ticket
    liaison = cast.liaison if unit == LEAD else cast.other_liaison
    await apply(conn, ticket, "sign", liaison, {}, at=signed)
    if callback is None:
        return ticket
    when, satisfaction, resolution = callback
    await apply(conn, ticket, "reply", liaison, {"reply": "已处理", "basis": "现场核实"}, at=signed)
    await apply(conn, ticket, "approve_reply", cast.dispatcher, {}, at=signed)
    if reopen:
        await apply(conn, ticket, "callback_reopen", cast.agent,
                    {"satisfaction": satisfaction, "resolution": resolution, "reason": "问题仍存在"}, at=when)
    else:
        await apply(conn, ticket, "callback_close", cast.agent,
                    {"satisfaction": satisfaction, "resolution": resolution}, at=when)
    return ticket


async def seed_march(conn: asyncpg.Connection, cast: Cast) -> dict[str, int]:
    """The month of the hand computation (Mon 2 March 2026 is a working day; a sign
    clock allows 1 working day)."""
    return {
        # LEAD (urban-mgmt)
        "a1": await run(conn, cast, LEAD, at(2, 9), at(2, 9, 30), (at(10, 10), 5, "resolved")),
        "a2": await run(conn, cast, LEAD, at(2, 10), at(9, 9), (APRIL_1, 4, "resolved")),  # signed late; April callback
        "a3": await run(conn, cast, LEAD, at(3, 9), at(3, 11), (at(12, 15), 3, "partly")),
        "a4": await run(conn, cast, LEAD, at(3, 10), None, None),  # never signed: late at the month's end
        "a5": await run(conn, cast, LEAD, at(27, 9, month=2), at(27, 10, month=2), (at(5, 9), 1, "unresolved"),
                        reopen=True),  # February dispatch, March callback (dissatisfied: reopened)
        # OTHER (public-security)
        "b1": await run(conn, cast, OTHER, at(4, 9), at(4, 10), (at(12, 9), 4, "resolved")),
        "b2": await run(conn, cast, OTHER, at(4, 9), at(4, 11), (at(31, 23, 59), 2, "unresolved")),
    }


# By hand:
# LEAD  sign clocks started in March: a1 met, a2 missed, a3 met, a4 running past its
#       deadline (3 March 10:00 + 1 working day) on 1 April -> response 2 / 4 = 0.5
#       callbacks in March: a1 resolved/5, a3 partly/3, a5 unresolved/1 (a2's is in April)
#       -> resolution 1 / 3, satisfaction (5, 3) 2 / 3
# OTHER sign: b1 met, b2 met -> 2 / 2; callbacks b1 resolved/4, b2 unresolved/2
#       -> resolution 1 / 2, satisfaction 1 / 2
