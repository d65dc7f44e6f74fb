"""States, actions and the ONE table of allowed transitions.

``TRANSITIONS[(state, action)]`` gives the next state (``SAME`` keeps the state)
and the roles allowed to take the action. Everything that changes a ticket goes
through :func:`hotline.tickets.workflow.apply`, which looks the pair up here
inside the transaction that holds the ticket's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass

# the kinds and urgencies are the dimensions SLA policies match on: defined there
# (sla must not import tickets), re-exported here
from hotline.sla.config import KINDS as KINDS
from hotline.sla.config import URGENCIES as URGENCIES

STATES: tuple[str, ...] = (
    "intake", "dispatched", "handling", "return_review", "extension_review",
    "waiting_citizen", "reply_review", "callback", "closed", "merged",
)
OPEN_STATES = frozenset(STATES) - {"closed", "merged"}
STATE_NAMES_ZH = {
    "intake": "受理", "dispatched": "已派单待签收", "handling": "办理中",
    "return_review": "退回待审核", "extension_review": "延期待审核",
    "waiting_citizen": "待市民补充", "reply_review": "回复待审核",
    "callback": "待回访", "closed": "已办结", "merged": "已并单",
}
ACTION_NAMES_ZH = {
    "create": "受理", "close_direct": "直接办结", "dispatch": "派单", "sign": "签收",
    "return": "退回", "redispatch": "改派", "reject_return": "退回不予通过",
    "request_extension": "申请延期", "approve_extension": "延期批准", "refuse_extension": "延期不予批准",
    "await_citizen": "等待市民补充", "resume": "恢复办理", "reply": "办理回复",
    "approve_reply": "回复审核通过", "reopen": "重办", "callback_close": "回访办结",
    "callback_reopen": "回访不满意重办", "supervise": "督办", "urge": "催办", "merge": "并单",
    "assist_sign": "协办签收", "assist_reply": "协办回复", "add_assist": "增加协办单位",
    "link_call": "关联来电", "update": "修改", "overdue": "超期", "escalate": "超期升级",
    "subdispatch": "下派", "reply_up": "回复上级", "return_up": "退回上级",
    "request_await": "申请等待市民补充", "refuse_await": "不同意等待市民补充",
    "refuse": "不予受理", "transfer_out": "转其他渠道", "supervise_reply": "督办回复", "elevate": "提级办理",
}
CLOSE_KIND_NAMES_ZH = {"direct": "直接办结", "completed": "办结", "merged": "并单", "refused": "不予受理",
                       "transferred": "转其他渠道"}
KIND_NAMES_ZH = {"enquiry": "咨询", "help": "求助", "suggestion": "建议", "complaint": "投诉",
                 "report": "举报", "praise": "表扬"}
CHANNELS = ("phone", "web", "app", "wechat", "sms", "email", "letter", "visit", "ingest")
SATISFACTION_ZH = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}

SAME = "="  # the action keeps the ticket's state

CENTRE = ("dispatcher", "supervisor", "admin")
FRONT = ("agent", "expert", "dispatcher", "supervisor", "admin")
UNIT = ("liaison",)


@dataclass(frozen=True, slots=True)
class Transition:
    to: str
    roles: frozenset[str]
    #: the actor must be a liaison of the lead unit ("lead") or of an assisting unit ("assist")
    unit_leg: str | None = None


def _t(to: str, roles: tuple[str, ...], unit_leg: str | None = None) -> Transition:
    return Transition(to, frozenset(roles), unit_leg)


_OPEN_BEFORE_CLOSE = ("intake", "dispatched", "handling", "return_review", "extension_review",
                      "waiting_citizen", "reply_review", "callback")
_WITH_UNIT = ("dispatched", "handling", "return_review", "extension_review", "waiting_citizen",
              "reply_review")

TRANSITIONS: dict[tuple[str, str], Transition] = {
    # intake: answered on the spot from the knowledge base, dispatched, refused (不予受理:
    # litigation, petitions ...) or sent to another channel (转其他渠道: 110/119/120/122 ...)
    ("intake", "close_direct"): _t("closed", FRONT),
    ("intake", "dispatch"): _t("dispatched", FRONT),
    ("intake", "refuse"): _t("closed", FRONT),
    ("intake", "transfer_out"): _t("closed", FRONT),
    # the lead unit signs (签收) or returns (退回) a wrongly dispatched ticket; after the
    # return window only the centre may return it for the unit (the centre's approval)
    ("dispatched", "sign"): _t("handling", UNIT, "lead"),
    ("dispatched", "return"): _t("return_review", UNIT + CENTRE, "lead"),
    ("handling", "return"): _t("return_review", UNIT + CENTRE, "lead"),
    # multi-level dispatch: a district (or street) passes the ticket down to one of its
    # child units (下派); the lower unit replies up (回复上级) or returns it up (退回上级)
    # and the upper unit carries on; its own clocks never stopped
    ("handling", "subdispatch"): _t("dispatched", UNIT, "lead"),
    ("handling", "reply_up"): _t("handling", UNIT, "lead"),
    ("dispatched", "return_up"): _t("handling", UNIT + CENTRE, "lead"),
    ("handling", "return_up"): _t("handling", UNIT + CENTRE, "lead"),
    # the centre reviews a return: redispatch (改派) or back to the unit
    ("return_review", "redispatch"): _t("dispatched", CENTRE),
    ("return_review", "reject_return"): _t("handling", CENTRE),
    # extension (延期), requested before the deadline
    ("handling", "request_extension"): _t("extension_review", UNIT, "lead"),
    ("extension_review", "approve_extension"): _t("handling", CENTRE),
    ("extension_review", "refuse_extension"): _t("handling", CENTRE),
    # waiting on the citizen pauses the clock: the unit asks, the centre decides
    ("handling", "request_await"): _t(SAME, UNIT, "lead"),
    ("handling", "await_citizen"): _t("waiting_citizen", CENTRE),
    ("handling", "refuse_await"): _t(SAME, CENTRE),
    ("waiting_citizen", "resume"): _t("handling", UNIT + CENTRE, "lead"),
    # reply with basis -> centre review -> callback (回访) or reopen (重办)
    ("handling", "reply"): _t("reply_review", UNIT, "lead"),
    ("reply_review", "approve_reply"): _t("callback", CENTRE),
    ("reply_review", "reopen"): _t("handling", CENTRE),
    # callback records satisfaction on five levels and closes or reopens
    ("callback", "callback_close"): _t("closed", FRONT),
    ("callback", "callback_reopen"): _t("handling", FRONT),
    # the centre may send a closed ticket back to the unit (complaint about the result)
    ("closed", "reopen"): _t("handling", ("supervisor", "admin")),
}
for _state in _OPEN_BEFORE_CLOSE:
    TRANSITIONS[(_state, "supervise")] = _t(SAME, ("supervisor", "admin"))  # 督办 (a supervision order)
    TRANSITIONS[(_state, "urge")] = _t(SAME, ("agent", "dispatcher", "supervisor", "admin"))  # 催办
    TRANSITIONS[(_state, "merge")] = _t("merged", CENTRE)  # 并单 into a master
    TRANSITIONS[(_state, "link_call")] = _t(SAME, FRONT)
    TRANSITIONS[(_state, "update")] = _t(SAME, FRONT)
for _state in _WITH_UNIT:
    TRANSITIONS[(_state, "assist_sign")] = _t(SAME, UNIT, "assist")
    TRANSITIONS[(_state, "assist_reply")] = _t(SAME, UNIT, "assist")
    TRANSITIONS[(_state, "add_assist")] = _t(SAME, CENTRE)
    TRANSITIONS[(_state, "supervise_reply")] = _t(SAME, UNIT)  # the unit the order went to answers it
    if _state != "waiting_citizen":  # resume first: the pause belongs to the unit that asked for it
        TRANSITIONS[(_state, "elevate")] = _t("dispatched", CENTRE)  # 提级办理: to a higher-level unit

ACTIONS: tuple[str, ...] = tuple(sorted({a for (_, a) in TRANSITIONS}))


def allowed_actions(state: str, roles: frozenset[str] | None = None) -> list[str]:
    """Actions possible from ``state`` (for the given roles, when given)."""
    return sorted(
        action for (s, action), t in TRANSITIONS.items()
        if s == state and (roles is None or t.roles & roles)
    )
