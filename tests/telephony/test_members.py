"""Queue membership planning (hotline.calls.members): pure, no Asterisk needed."""

from __future__ import annotations

import pytest

from hotline.calls.dialplan import generate_queues
from hotline.calls.members import (
    Membership,
    SeatFacts,
    desired_memberships,
    from_queue_member_event,
    hotline_queues,
    plan_changes,
    validate_interface,
    validate_skills,
)
from hotline.calls.settings import CallSettings
from hotline.errors import ValidationError
from hotline.registry import Registry

PHONE = "PJSIP/8001"


def seat(state: str = "ready", *, roles: tuple[str, ...] = ("agent",), line: str | None = None,
         skills: tuple[str, ...] = (), reason: str | None = None, phone: str | None = PHONE) -> SeatFacts:
    return SeatFacts(1, "wang", "王晓燕", frozenset(roles), line, state, reason, phone, skills)


def test_an_agent_is_in_12345_and_the_skill_queues_of_dual_lines(registry: Registry) -> None:
    got = desired_memberships(seat(skills=("hrss", "general", "tax")), registry)
    # general is the platform's skill, tax a sub-centre's: no skill queue for either
    assert [m.queue for m in got] == ["hotline-12345", "hotline-12345-hrss"]
    assert all(m.member_name == "王晓燕" and not m.paused for m in got)


def test_an_expert_is_in_the_pool_of_their_line_instead(registry: Registry) -> None:
    got = desired_memberships(seat(roles=("expert",), line="12333", skills=("hrss",)), registry)
    assert [m.queue for m in got] == ["experts-12333"]
    assert desired_memberships(seat(roles=("expert",), line="12366"), registry) == []  # a line without a pool


@pytest.mark.parametrize(("state", "reason", "expected"), [
    ("ready", None, (False, "")), ("on_call", None, (False, "")), ("after_call", None, (False, "")),
    ("break", "用餐", (True, "用餐")), ("offline", None, None)])
def test_state_decides_paused_or_absent(registry: Registry, state: str, reason: str | None,
                                        expected: tuple[bool, str] | None) -> None:
    got = desired_memberships(seat(state, reason=reason), registry)
    assert ([(m.paused, m.reason) for m in got][:1] or [None]) == [expected]


def test_no_phone_no_membership(registry: Registry) -> None:
    assert desired_memberships(seat(phone=None), registry) == []


def test_plan_adds_pauses_and_removes_only_what_differs(registry: Registry) -> None:
    managed = hotline_queues(registry)
    want = desired_memberships(seat("break", reason="培训", skills=("hrss",)), registry)
    have = [
        Membership("hotline-12345", PHONE, "王晓燕", True, "用餐"),        # wrong reason → QueuePause
        Membership("hotline-12345-transport", PHONE, "王晓燕"),           # not wanted → QueueRemove
        Membership("hotline-12345", "Local/9999@agents", "x"),           # by hand → QueueRemove
        Membership("hotline-12345", "PJSIP/site", "x", kind="static"),   # queues.conf: the site's
        Membership("sales", PHONE, "王晓燕"),                              # not a hotline queue
    ]
    changes = plan_changes(have, want, managed=managed)
    assert [(c.action, c.queue, c.interface) for c in changes] == [
        ("QueueAdd", "hotline-12345-hrss", PHONE),
        ("QueuePause", "hotline-12345", PHONE),
        ("QueueRemove", "hotline-12345", "Local/9999@agents"),
        ("QueueRemove", "hotline-12345-transport", PHONE),
    ]
    add, pause = changes[0].fields, changes[1].fields
    assert add["Paused"] == "true" and add["Reason"] == "培训" and add["MemberName"] == "王晓燕"
    assert pause == {"Queue": "hotline-12345", "Interface": PHONE, "Paused": "true", "Reason": "培训"}
    # a single seat's change leaves other phones alone
    only = plan_changes(have, want, managed=managed, interfaces=frozenset({PHONE}))
    assert "Local/9999@agents" not in {c.interface for c in only}
    # in step: nothing to do (an unpaused member's stale reason does not matter)
    ready = desired_memberships(seat(), registry)
    assert plan_changes([Membership("hotline-12345", PHONE, "王晓燕", False, "old")], ready, managed=managed) == []


def test_queue_member_event_of_asterisk_22() -> None:
    event = {"Event": "QueueMember", "Queue": "hotline-12345", "Name": "王晓燕", "Location": "Local/8001@agents",
             "StateInterface": "Local/8001@agents", "Membership": "dynamic", "Paused": "1", "PausedReason": "用餐"}
    assert from_queue_member_event(event) == Membership("hotline-12345", "Local/8001@agents", "王晓燕", True, "用餐")


@pytest.mark.parametrize("value", ["PJSIP/8001", "Local/8001@agents", "SIP/trunk/1234", "IAX2/peer-1"])
def test_good_interfaces(value: str) -> None:
    assert validate_interface(value) == value


@pytest.mark.parametrize("value", ["", "8001", "PJSIP/", "PJSIP/80 01", "PJSIP/8001,t", "PJSIP/8001\r\nX: y",
                                   "PJSIP/8001;x", "PJSIP/" + "1" * 80, None, 8001])
def test_bad_interfaces_name_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as err:
        validate_interface(value)
    assert err.value.field == "interface"


def test_skills_must_be_registry_skills(registry: Registry) -> None:
    assert validate_skills(registry, ["transport", "hrss", "hrss "]) == ("hrss", "transport")
    assert validate_skills(registry, "hrss,tax") == ("hrss", "tax")
    with pytest.raises(ValidationError) as err:
        validate_skills(registry, ["hrss", "plumbing"])
    assert err.value.field == "skills" and err.value.details["value"] == "plumbing"


def test_queues_carry_the_wrapup_setting(registry: Registry) -> None:
    assert "wrapuptime = 10" in generate_queues(registry, CallSettings())
    assert "wrapuptime = 3" in generate_queues(registry, CallSettings(wrapup_seconds=3))
