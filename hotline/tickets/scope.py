"""Who sees and acts on which tickets.

- The centre (agents, experts, dispatchers, supervisors, admins without a unit) sees
  every ticket.
- A unit's liaison (联络员) sees the tickets where its unit has a leg.
- A unit's dispatcher (a ``dispatcher`` with a ``unit_code``: a district's or a
  street's 派单员) sees the tickets where any unit of its subtree has a leg, and acts
  for its unit as a liaison does (sign, pass down, reply up); centre decisions
  (redispatch, approvals) stay with the centre.
"""

from __future__ import annotations

import asyncpg

from hotline.auth.model import User

CENTRE_ROLES = ("agent", "expert", "dispatcher", "supervisor", "admin")


def is_unit_dispatcher(user: User) -> bool:
    return (user.has_role("dispatcher") and bool(user.unit_code)
            and not user.has_role("agent", "expert", "supervisor", "admin"))


def is_unit_only(user: User) -> bool:
    """A user who sees only some units' tickets (a liaison, a unit's dispatcher)."""
    return is_unit_dispatcher(user) or (user.has_role("liaison") and not user.has_role(*CENTRE_ROLES))


def acting_roles(user: User) -> frozenset[str]:
    """The roles the state machine checks: a unit's people act as the unit (liaison)."""
    return frozenset({"liaison"}) if is_unit_only(user) else user.roles


async def scope_units(conn: asyncpg.Connection | asyncpg.Pool, user: User) -> list[str] | None:
    """The units whose tickets ``user`` sees; None: all (the centre)."""
    if not is_unit_only(user):
        return None
    if not user.unit_code:
        return []
    if not is_unit_dispatcher(user):
        return [user.unit_code]
    rows = await conn.fetch(
        """WITH RECURSIVE down(code) AS (SELECT $1::text UNION
               SELECT u.code FROM units u JOIN down ON u.parent_code = down.code)
           SELECT code FROM down""", user.unit_code)
    return sorted(r["code"] for r in rows)
