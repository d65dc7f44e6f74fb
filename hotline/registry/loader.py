"""Read and validate ``config/hotlines.yaml``.

Validation collects **every** problem before refusing, each naming the entry (by
number where it has one) and the field, so an operator fixes the file in one pass.
Nothing touches the database here: a bad file never gets that far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

import yaml

from hotline.errors import HotlineError
from hotline.registry.model import (
    DAY_NAMES,
    PLATFORM_NUMBER,
    Hotline,
    HoursWindow,
    Mode,
    Registry,
    ServiceHours,
)

_NUMBER_RE = re.compile(r"^[0-9]{3,8}$")
_UNIT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
# An Asterisk dial string: TECH/resource, optionally several joined by '&'.
# The resource is limited to what dial strings use, so nothing in it can reach Dial()'s
# argument parser (',' options, '(' ')' option arguments, '${' expressions, quotes).
_DIAL_RE = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.@:+*#/=-]+(&[A-Za-z0-9_]+/[A-Za-z0-9_.@:+*#/=-]+)*$")
# A sound file as Playback() takes it: no ',' (options), '&' (several files), no '..'.
_SOUND_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}$")
# Line breaks and control characters (C0, DEL, C1, Unicode line/paragraph separators):
# refused in every field; the generated dialplan writes names into comments.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Free text (names) reaches the dialplan only in comments; the characters the dialplan
# gives a meaning elsewhere are refused anyway, so a name can never become syntax.
_PROSE_FORBIDDEN = ",;&|$\"\\[]{}`"
_PROSE_FIELDS = ("name", "department")
_HHMM_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_KNOWN_FIELDS = {
    "number", "name", "department", "unit", "mode", "mode_basis", "queue", "skill",
    "announcement", "expert_pool", "dial_target", "no_answer_timeout", "service_hours",
}
TIMEOUT_RANGE = (5, 120)


@dataclass(frozen=True, slots=True)
class Problem:
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.entry}: {self.field}: {self.message}"


class RegistryInvalid(HotlineError):
    code = "registry_invalid"
    status = 500

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the hotline registry:\n{lines}")


def load_registry(path: Path | str) -> Registry:
    """Parse and validate the file; raise :class:`RegistryInvalid` listing all problems."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryInvalid(str(path), [Problem("file", "path", str(exc))]) from None
    return parse_registry(text, source=str(path))


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryInvalid(source, [Problem("file", "yaml", str(exc))]) from None
    problems: list[Problem] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("lines"), list):
        raise RegistryInvalid(source, [Problem("file", "lines", "expected a mapping with a 'lines' list")])
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(Problem("defaults", "defaults", "expected a mapping"))
        defaults = {}

    lines: list[Hotline] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(doc["lines"]):
        entry = f"lines[{index}]"
        if not isinstance(raw, dict):
            problems.append(Problem(entry, "-", f"expected a mapping, got {raw!r}"))
            continue
        number = str(raw.get("number", "")).strip()
        if number:
            entry = f"lines[{index}] ({number})"
        line = _parse_line(raw, defaults, entry, problems)
        if number:
            if number in seen:
                problems.append(
                    Problem(entry, "number", f"duplicate number {number} (also {seen[number]})")
                )
            else:
                seen[number] = entry
        if line is not None:
            lines.append(line)

    platforms = [line.number for line in lines if line.mode is Mode.PLATFORM]
    if PLATFORM_NUMBER not in seen:
        problems.append(Problem("file", "lines", f"the registry must contain {PLATFORM_NUMBER}"))
    elif platforms != [PLATFORM_NUMBER] and not any(p.field == "mode" for p in problems):
        problems.append(
            Problem("file", "mode", f"exactly one line ({PLATFORM_NUMBER}) has mode 'platform', got {platforms}")
        )
    if problems:
        raise RegistryInvalid(source, problems)
    return Registry(tuple(lines))


def _parse_line(
    raw: dict[str, Any], defaults: dict[str, Any], entry: str, problems: list[Problem]
) -> Hotline | None:
    before = len(problems)

    def bad(field: str, message: str) -> None:
        problems.append(Problem(entry, field, message))

    for key in raw:
        if key not in _KNOWN_FIELDS:
            bad(str(key), "unknown field")

    def text(field: str, required: bool = True) -> str | None:
        value = raw.get(field, defaults.get(field))
        if value is None or str(value).strip() == "":
            if required:
                bad(field, "missing")
            return None
        if not isinstance(value, str | int):
            bad(field, f"expected text, got {value!r}")
            return None
        result = str(value).strip()
        if _CONTROL_RE.search(result):
            bad(field, f"{result!r} contains a line break or control character")
            return None
        if field in _PROSE_FIELDS:
            forbidden = sorted({c for c in result if c in _PROSE_FORBIDDEN})
            if forbidden:
                bad(field, f"{result!r} contains {', '.join(repr(c) for c in forbidden)}, which the dialplan "
                    "gives a meaning (use the full-width form, e.g. '，')")
                return None
        return result

    number = text("number")
    if number is not None and not _NUMBER_RE.match(number):
        bad("number", f"{number!r} is not a dialled short code (3 to 8 digits)")
    name, department = text("name"), text("department")
    unit = text("unit")
    if unit is not None and not _UNIT_RE.match(unit):
        bad("unit", f"{unit!r} is not a unit code (lower-case letters, digits, - and _)")
    mode_text = text("mode")
    mode: Mode | None = None
    if mode_text is not None:
        try:
            mode = Mode(mode_text)
        except ValueError:
            bad("mode", f"unknown mode {mode_text!r} (expected one of {', '.join(m.value for m in Mode)})")
    mode_basis = text("mode_basis") or ""
    queue, skill = text("queue"), text("skill")
    for field, value in (("queue", queue), ("skill", skill)):
        if value is not None and not _NAME_RE.match(value):
            bad(field, f"{value!r} is not a valid name (letters, digits, '.', '_', '-')")
    announcement = text("announcement", required=False)
    if announcement is not None and not _SOUND_RE.match(announcement):
        bad("announcement", f"{announcement!r} is not a sound file name (letters, digits, '_', '-', '.', '/'; "
            "no '..')")

    expert_pool = text("expert_pool", required=False)
    dial_target = text("dial_target", required=False)
    timeout_raw = raw.get("no_answer_timeout")
    if mode is Mode.DUAL and expert_pool is None:
        bad("expert_pool", "a dual line needs its department's expert-seat pool")
    if expert_pool is not None:
        if mode is not None and mode is not Mode.DUAL:
            bad("expert_pool", f"{expert_pool!r} given, but a {mode.value} line has no expert seats")
        elif not _NAME_RE.match(expert_pool):
            bad("expert_pool", f"{expert_pool!r} is not a valid queue name")
    if mode is Mode.SUBCENTER:
        if dial_target is None:
            bad("dial_target", "a sub-centre needs a dial target (e.g. PJSIP/12366@subcenter-tax)")
        timeout_raw = raw.get("no_answer_timeout", defaults.get("no_answer_timeout"))
    elif dial_target is not None and mode is not None:
        bad("dial_target", f"{dial_target!r} given, but only sub-centre lines are dialled out")
    if dial_target is not None and not _DIAL_RE.match(dial_target):
        bad("dial_target", f"{dial_target!r} is not an Asterisk dial string (TECH/resource)")
    timeout: int | None = None
    if timeout_raw is not None:
        low, high = TIMEOUT_RANGE
        if isinstance(timeout_raw, bool) or not isinstance(timeout_raw, int):
            bad("no_answer_timeout", f"expected whole seconds, got {timeout_raw!r}")
        elif not low <= timeout_raw <= high:
            bad("no_answer_timeout", f"{timeout_raw} s is outside {low}..{high} s")
        elif mode is not None and mode is not Mode.SUBCENTER:
            bad("no_answer_timeout", f"given, but a {mode.value} line has no sub-centre to wait for")
        else:
            timeout = timeout_raw

    hours = _parse_hours(raw.get("service_hours", defaults.get("service_hours", "7x24")), bad)

    if len(problems) > before or mode is None:
        return None
    assert number and name and department and unit and queue and skill
    return Hotline(
        number=number, name=name, department=department, unit=unit, mode=mode,
        mode_basis=mode_basis, queue=queue, skill=skill, announcement=announcement,
        expert_pool=expert_pool, dial_target=dial_target, no_answer_timeout=timeout,
        service_hours=hours,
    )


def _parse_hours(value: Any, bad: Any) -> ServiceHours:
    if value in (None, "7x24", "7×24", "24x7"):
        return ServiceHours()
    if not isinstance(value, list) or not value:
        bad("service_hours", f"expected 7x24 or a list of windows, got {value!r}")
        return ServiceHours()
    windows = []
    for i, item in enumerate(value):
        field = f"service_hours[{i}]"
        if not isinstance(item, dict):
            bad(field, f"expected {{days, open, close}}, got {item!r}")
            continue
        days = _parse_days(str(item.get("days", "")))
        if days is None:
            bad(f"{field}.days", f"{item.get('days')!r} is not like 'mon-fri' or 'sat,sun'")
        opens = _parse_time(item.get("open"))
        closes = _parse_time(item.get("close"))
        if opens is None:
            bad(f"{field}.open", f"{item.get('open')!r} is not HH:MM")
        if closes is None:
            bad(f"{field}.close", f"{item.get('close')!r} is not HH:MM")
        if opens is not None and closes is not None and not opens < closes:
            bad(field, f"opens at {item.get('open')} but closes at {item.get('close')}")
        if days is not None and opens is not None and closes is not None:
            windows.append(HoursWindow(days, opens, closes))
    return ServiceHours(tuple(windows))


def _parse_days(text: str) -> frozenset[int] | None:
    days: set[int] = set()
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAY_NAMES or last not in DAY_NAMES:
                return None
            a, b = DAY_NAMES.index(first), DAY_NAMES.index(last)
            if a > b:
                return None
            days.update(range(a, b + 1))
        elif part in DAY_NAMES:
            days.add(DAY_NAMES.index(part))
        else:
            return None
    return frozenset(days) or None


def _parse_time(value: Any) -> time | None:
    text = str(value or "")
    if not _HHMM_RE.match(text):
        return None
    if text == "24:00":
        return time(23, 59, 59, 999999)
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
