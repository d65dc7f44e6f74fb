"""Routing decisions as pure functions: which line was dialled, and where the call
goes. No I/O here, so the decision is the same whether the database answers or
not (the flows feed in what they could look up)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hotline.calls.settings import CallSettings
from hotline.registry import Hotline, Mode, Registry

_NON_DIGITS = re.compile(r"\D")
#: Chinese area codes: 010, 02X, 0XXX (a caller may dial 0580-12345 from a mobile)
_AREA_RE = re.compile(r"^0(10|2[0-9]|[3-9][0-9]{2})")


@dataclass(frozen=True, slots=True)
class LineMatch:
    line: Hotline
    known: bool
    dialled: str
    source: str  # which header or parameter named the line

    def decision(self) -> dict[str, Any]:
        return {
            "step": "line",
            "outcome": "matched" if self.known else "unknown_number",
            "dialled": self.dialled,
            "source": self.source,
            "line": self.line.number,
        }


def identify_line(registry: Registry, candidates: list[tuple[str, str]]) -> LineMatch:
    """The first candidate (source, raw value) that names a line in the registry,
    normalised: digits only, an area-code prefix dropped (0580 12345 → 12345). An
    unknown number is routed to 12345 and recorded as unknown."""
    first_raw, first_source = "", ""
    for source, raw in candidates:
        raw = (raw or "").strip()
        if not raw or raw.lower() in ("unknown", "s"):
            continue
        if not first_raw:
            first_raw, first_source = raw, source
        digits = _NON_DIGITS.sub("", raw)
        for candidate in _variants(digits):
            line = registry.get(candidate)
            if line is not None:
                return LineMatch(line, True, raw, source)
    return LineMatch(registry.platform, False, first_raw, first_source or "none")


def _variants(digits: str) -> list[str]:
    out = [digits]
    if digits.startswith("86") and len(digits) > 7:
        digits = "0" + digits[2:]
        out.append(digits)
    if digits.startswith("0"):
        match = _AREA_RE.match(digits)
        if match:
            out.append(digits[match.end():])
    return out


@dataclass(frozen=True, slots=True)
class Route:
    """Where the call goes; :meth:`variables` is what the dialplan acts on."""

    route: str  # platform | merged | dual | subcenter | blocked | out_of_hours | fallback
    line: Hotline
    queue: str | None = None
    skill: str | None = None
    skill_queue: str | None = None
    skill_wait: int | None = None
    announcement: str | None = None
    dial_target: str | None = None
    dial_timeout: int | None = None
    decisions: tuple[dict[str, Any], ...] = field(default=())

    def variables(self) -> dict[str, str]:
        values = {
            # as few as the dialplan needs: each one is a round trip to Asterisk
            # (the line tag, __HOTLINE_LINE, is set by the generated dialplan itself)
            "HOTLINE_ROUTE": self.route,
            "HOTLINE_QUEUE": self.queue,
            "HOTLINE_SKILL_QUEUE": self.skill_queue,
            "HOTLINE_SKILL_WAIT": self.skill_wait,
            "HOTLINE_ANNOUNCEMENT": self.announcement,
            "HOTLINE_DIAL_TARGET": self.dial_target,
            "HOTLINE_DIAL_TIMEOUT": self.dial_timeout,
        }
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def skill_queue(line: Hotline) -> str:
    """A dual line's skill queue in ``queues_hotline.conf`` (overflows to the shared queue)."""
    return f"{line.queue}-{line.skill}"


def decide_route(
    match: LineMatch,
    registry: Registry,
    settings: CallSettings,
    *,
    local_time: datetime,
    blocked_reason: str | None = None,
) -> Route:
    line = match.line
    platform = registry.platform
    if blocked_reason is not None:
        return Route(
            "blocked", line, announcement=settings.blocked_sound,
            decisions=({"step": "blocklist", "outcome": "blocked", "reason": blocked_reason},),
        )
    if not match.known:
        return Route(
            "fallback", platform, queue=platform.queue, skill=platform.skill, announcement=platform.announcement,
            decisions=({"step": "route", "outcome": "fallback", "reason": "unknown dialled number",
                        "queue": platform.queue},),
        )
    if not line.service_hours.is_open(local_time):
        # the line's own service is closed; 12345 answers 7×24
        return Route(
            "out_of_hours", line, queue=platform.queue, skill=platform.skill,
            announcement=f"{settings.closed_sound_prefix}{line.number}",
            decisions=({"step": "service_hours", "outcome": "closed", "local_time": local_time.isoformat(),
                        "hours": line.service_hours.to_json(), "queue": platform.queue},),
        )
    if line.mode is Mode.SUBCENTER:
        return Route(
            "subcenter", line, queue=platform.queue, skill=line.skill, announcement=line.announcement,
            dial_target=line.dial_target, dial_timeout=line.no_answer_timeout,
            decisions=({"step": "route", "outcome": "subcenter", "dial_target": line.dial_target,
                        "no_answer_timeout": line.no_answer_timeout, "fallback_queue": platform.queue},),
        )
    if line.mode is Mode.DUAL:
        return Route(
            "dual", line, queue=line.queue, skill=line.skill, skill_queue=skill_queue(line),
            skill_wait=settings.skill_overflow_seconds, announcement=line.announcement,
            decisions=({"step": "route", "outcome": "dual", "queue": line.queue, "skill": line.skill,
                        "skill_queue": skill_queue(line)},),
        )
    if line.mode is Mode.MERGED:
        return Route(
            "merged", line, queue=line.queue, skill=line.skill, announcement=line.announcement,
            decisions=({"step": "route", "outcome": "merged", "queue": line.queue, "tag": line.number},),
        )
    return Route(
        "platform", line, queue=line.queue, skill=line.skill, announcement=line.announcement,
        decisions=({"step": "route", "outcome": "platform", "queue": line.queue},),
    )
