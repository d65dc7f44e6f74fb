"""Helpers for the tickets tests: unit codes, the cast of users and functions that
drive a ticket to any state through the real workflow (imported by the tests as
``from tickets_support import ...``; fixtures live in conftest.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hotline.auth import hash_password
from hotline.auth.model import User
from hotline.tickets.intake import NewTicket, create_ticket
from hotline.tickets.workflow import apply

LEAD = "urban-mgmt"
ASSIST = "dinghai-jiefang"
OTHER = "public-security"
SUB = "urban-mgmt-squad"  # a unit under LEAD (made by the cast fixture)
ABOVE = "zs-gov"  # the unit above LEAD (made by the cast fixture)


@functools.cache
def _hash() -> str:
    return hash_password("password-long-1")


@dataclass
class Cast:
    agent: User
    dispatcher: User
    supervisor: User
    admin: User
    liaison: User  # of LEAD
    assist_liaison: User  # of ASSIST
    other_liaison: User  # of OTHER
    sub_liaison: User  # of SUB, the unit under LEAD


# the path of (action, who, data) that brings a new ticket to each state
PATHS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "intake": [],
    "dispatched": [("dispatch", "agent", {"unit_code": LEAD, "assist_units": [ASSIST]})],
}
PATHS["handling"] = PATHS["dispatched"] + [("sign", "liaison", {})]
PATHS["return_review"] = PATHS["dispatched"] + [("return", "liaison", {"reason": "不属于本单位职责"})]
PATHS["extension_review"] = PATHS["handling"] + [("request_extension", "liaison", {"days": 5, "reason": "需现场勘查"})]
PATHS["waiting_citizen"] = PATHS["handling"] + [("request_await", "liaison", {"reason": "请市民补充照片"}),
                                                ("await_citizen", "dispatcher", {})]
PATHS["reply_review"] = PATHS["handling"] + [("reply", "liaison", {"reply": "已处理", "basis": "《城市市容和环境卫生管理条例》"})]
PATHS["callback"] = PATHS["reply_review"] + [("approve_reply", "dispatcher", {})]
PATHS["closed"] = PATHS["callback"] + [("callback_close", "agent", {"satisfaction": 5})]

SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "close_direct": {"answer": "依据知识库 kb-12345-001 答复"},
    "dispatch": {"unit_code": LEAD, "assist_units": [ASSIST]},
    "return": {"reason": "不属于本单位职责"},
    "redispatch": {"unit_code": OTHER},
    "reject_return": {"reason": "属于城管职责"},
    "request_extension": {"days": 5, "reason": "需现场勘查"},
    "approve_extension": {},
    "refuse_extension": {"reason": "理由不充分"},
    "await_citizen": {"reason": "请市民补充照片"},
    "resume": {},
    "reply": {"reply": "已处理", "basis": "《城市市容和环境卫生管理条例》"},
    "approve_reply": {},
    "reopen": {"reason": "答复未解决诉求"},
    "callback_close": {"satisfaction": 4},
    "callback_reopen": {"satisfaction": 2, "reason": "问题仍存在"},
    "supervise": {"instruction": "请加快办理"},
    "urge": {"message": "市民再次来电催促"},
    "link_call": {},
    "update": {"changes": {"location": "解放西路"}},
    "assist_sign": {},
    "assist_reply": {"reply": "已配合"},
    "add_assist": {"unit_code": "putuo-shenjiamen"},
    "merge": {},
    "sign": {},
    "subdispatch": {"unit_code": SUB},
    "reply_up": {"reply": "已现场处理", "basis": "现场核查"},
    "return_up": {"reason": "不属于本中队辖区"},
    "request_await": {"reason": "请市民补充照片"},
    "refuse_await": {"reason": "材料已齐全，无需等待"},
    "refuse": {"reason_code": "litigation", "answer": "该事项已进入诉讼程序，请通过司法途径解决"},
    "transfer_out": {"reason_code": "emergency_110", "answer": "已转110处理"},
    "supervise_reply": {"reply": "已加派人手，三日内办结"},
    "elevate": {"reason": "涉及多部门，提级办理"},
}


def who(cast: Cast, name: str) -> User:
    return getattr(cast, name)


async def new_ticket(conn: asyncpg.Connection, cast: Cast, *, at: datetime | None = None, **kw: Any) -> int:
    fields: dict[str, Any] = {"hotline_number": "12345", "subject": "占道经营", "facts": "商贩占用人行道",
                              "location": "解放路", "caller_name": "张三", "caller_number": "13800001111",
                              "category_code": "0201", "kind": "complaint"}
    fields.update(kw)
    return await create_ticket(conn, NewTicket(**fields), actor_id=cast.agent.id, actor_name="agent1", at=at)


async def drive(conn: asyncpg.Connection, cast: Cast, state: str, **kw: Any) -> int:
    ticket_id = await new_ticket(conn, cast, **kw)
    for action, actor, data in PATHS[state]:
        await apply(conn, ticket_id, action, who(cast, actor), dict(data))
    assert await conn.fetchval("SELECT state FROM tickets WHERE id = $1", ticket_id) == state
    return ticket_id
