"""The published record schema of the ingest API (docs/INGEST.md) and validation.

A record is refused (quarantined) for *structural* faults: a missing required
field, a wrong type, an unparsable time, a line that is not in the registry or not
served by the source. Descriptive codes (unit, category, region) are stored as
sent and measured by the data-quality reports instead, so that one bad code does
not hold back an otherwise good record.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hotline.phone import normalize

KINDS = ("calls", "tickets")
CALL_STATES = ("ringing", "queued", "answered", "transferred", "completed", "abandoned", "failed")
TICKET_STATES = (
    "intake", "direct", "dispatched", "signed", "handling", "returned", "extended",
    "replied", "reviewed", "callback", "reopened", "merged", "closed",
)
SATISFACTION = ("very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied")
_LINE_RE = re.compile(r"^[0-9]{3,8}$")
#: what PostgreSQL cannot store in text or jsonb: NUL, and half a surrogate pair (JSON's
#: ``\ud800`` escape decodes to one; it has no UTF-8 form)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str  # text | int | number | time | enum | phone
    required: bool = False
    max_length: int = 128
    choices: tuple[str, ...] = ()
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.type in ("text", "phone"):
            out["max_length"] = self.max_length
        if self.choices:
            out["choices"] = list(self.choices)
        if self.description:
            out["description"] = self.description
        return out


_COMMON = (
    Field("source_id", "text", True, 128, description="the record's id at the source"),
    Field("version", "int", True, description="increases with every change of the record (≥ 1)"),
    Field("seq", "int", description="the source's own send sequence number (for gap detection)"),
    Field("hotline_number", "text", True, 8, description="the line (registry number)"),
)

FIELDS: dict[str, tuple[Field, ...]] = {
    "calls": _COMMON + (
        Field("caller_number", "phone", max_length=32),
        Field("state", "enum", choices=CALL_STATES),
        Field("started_at", "time", True),
        Field("answered_at", "time"),
        Field("ended_at", "time"),
        Field("wait_seconds", "number"),
        Field("talk_seconds", "number"),
        Field("agent", "text", max_length=64),
        Field("region", "text", max_length=16, description="GB/T 2260 division code"),
        Field("unit_code", "text", max_length=64),
        Field("transfer_call_uid", "text", max_length=64,
              description="12345's call id (Asterisk uniqueid) when 12345 transferred the call"),
        Field("ticket_source_id", "text"),
    ),
    "tickets": _COMMON + (
        Field("state", "enum", True, choices=TICKET_STATES),
        Field("created_at", "time", True),
        Field("updated_at", "time"),
        Field("category", "text", max_length=64),
        Field("unit_code", "text", max_length=64),
        Field("region", "text", max_length=16),
        Field("caller_number", "phone", max_length=32),
        Field("summary", "text", max_length=4000),
        Field("call_source_id", "text"),
        Field("dispatched_at", "time"),
        Field("signed_at", "time"),
        Field("replied_at", "time"),
        Field("closed_at", "time"),
        Field("satisfaction", "enum", choices=SATISFACTION),
    ),
}

#: fields the data-quality report expects filled (completeness), per kind
QUALITY_MANDATORY: dict[str, tuple[str, ...]] = {
    "calls": ("caller_number", "state", "ended_at", "region"),
    "tickets": ("category", "unit_code", "region", "caller_number", "summary"),
}


@dataclass(frozen=True, slots=True)
class Reason:
    field: str | None
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Context:
    """What validation needs to know beyond the record."""

    lines: frozenset[str]           # active registry numbers
    allowed_lines: frozenset[str]   # lines the source may report on (empty: any)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _coerce(f: Field, value: Any) -> tuple[Any, Reason | None]:
    def bad(code: str, message: str) -> tuple[Any, Reason]:
        return None, Reason(f.name, code, message)

    if f.type in ("text", "phone"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return bad("type", f"{f.name} 必须是文本，收到 {type(value).__name__} 类型的值")
        value = value.strip()
        if len(value) > f.max_length:
            return bad("too_long", f"{f.name} 最多 {f.max_length} 个字符，收到 {len(value)} 个")
        if f.type == "phone":
            return _normalized(value), None
        return value, None
    if f.type == "int":
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            return bad("type", f"{f.name} 必须是整数，收到 {value!r}")
        if value < (1 if f.name == "version" else 0):
            return bad("range", f"{f.name} 不能小于 {1 if f.name == 'version' else 0}，收到 {value}")
        if value > INT64_MAX:
            return bad("range", f"{f.name} 不能大于 {INT64_MAX}，收到 {value}")
        return value, None
    if f.type == "number":
        try:
            number = Decimal(str(value).strip()) if not isinstance(value, bool) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            return bad("type", f"{f.name} 必须是数字，收到 {value!r}")
        if number < 0 or number >= Decimal("10000000"):
            return bad("range", f"{f.name} 必须在 0 到 9999999 之间，收到 {value}")
        return number, None
    if f.type == "time":
        if not isinstance(value, str):
            return bad("type", f"{f.name} 必须是 ISO 8601 时间文本，收到 {type(value).__name__} 类型的值")
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return bad("time", f"{f.name} 不是 ISO 8601 时间：{value!r}")
        if moment.tzinfo is None:
            return bad("time_zone", f"{f.name} 须带时区偏移（如 +08:00）：{value!r}")
        if not 2000 <= moment.year <= 2100:
            return bad("range", f"{f.name} 超出范围（2000–2100 年）：{value!r}")
        return moment, None
    if f.type == "enum":
        if not isinstance(value, str) or value.strip() not in f.choices:
            return bad("choice", f"{f.name} 必须是 {'、'.join(f.choices)} 之一，收到 {value!r}")
        return value.strip(), None
    raise AssertionError(f.type)


_MOBILE_SECOND = frozenset("3456789")


# A pure memo, kept in the module on purpose: the answer depends on the text alone
# (hotline.phone.normalize with the fixed default area code, no setting of any node), so
# two nodes in one process can share it; bounded, and it only saves re-parsing the same
# numbers in a batch.
@functools.lru_cache(maxsize=65536)
def _normalized(raw: str) -> str:
    # an already-normalised mobile number is the common case: normalize() returns it unchanged
    if len(raw) == 11 and raw[0] == "1" and raw[1] in _MOBILE_SECOND and raw.isdigit():
        return raw
    return normalize(raw).number


#: per kind: (name, type, required, max_length, choices, minimum, field) — the fast path's view
_SPECS: dict[str, tuple[tuple[str, str, bool, int, frozenset[str], int, Field], ...]] = {
    kind: tuple((f.name, f.type, f.required, f.max_length, frozenset(f.choices),
                 1 if f.name == "version" else 0, f) for f in fields)
    for kind, fields in FIELDS.items()
}
_fromisoformat = datetime.fromisoformat


def validate(kind: str, record: Any, ctx: Context) -> tuple[dict[str, Any] | None, list[Reason]]:
    """``(clean record, [])`` or ``(None, every reason)``; unknown fields are kept as sent.

    The common well-formed value of each type takes a fast path; anything else goes
    through :func:`_coerce`, which names the fault."""
    if not isinstance(record, Mapping):
        return None, [Reason(None, "type", f"每条记录必须是 JSON 对象，收到 {type(record).__name__} 类型的值")]
    reasons = unstorable(record)
    poisoned = {r.field for r in reasons}
    if record.get("_csv_error"):
        reasons.append(Reason(None, "csv_row", str(record["_csv_error"])))
    clean: dict[str, Any] = {}
    get = record.get
    for name, ftype, required, max_length, choices, minimum, f in _SPECS[kind]:
        if name in poisoned:
            continue
        value: Any = get(name)
        vtype = type(value)
        if vtype is str:
            if ftype == "time":
                try:
                    moment = _fromisoformat(value)
                except ValueError:
                    moment = None
                if moment is not None and moment.tzinfo is not None and 2000 <= moment.year <= 2100:
                    clean[name] = moment
                    continue
            elif ftype == "text" or ftype == "enum":
                if value and len(value) <= max_length and not value[0].isspace() and not value[-1].isspace() \
                        and (ftype == "text" or value in choices):
                    clean[name] = value
                    continue
            elif ftype == "phone" and value and len(value) <= max_length:
                clean[name] = _normalized(value.strip())
                continue
        elif vtype is int and ftype == "int" and minimum <= value <= INT64_MAX:
            clean[name] = value
            continue
        elif ftype == "number" and (vtype is int or vtype is float) and 0 <= value < 10_000_000:
            clean[name] = Decimal(value) if vtype is int else Decimal(repr(value))
            continue
        if _blank(value):
            if required:
                reasons.append(Reason(name, "required", f"缺少必填字段 {name}"))
            clean[name] = "" if ftype == "phone" else None
            continue
        coerced, reason = _coerce(f, value)
        if reason is not None:
            reasons.append(reason)
        clean[name] = coerced
    line = clean.get("hotline_number")
    if isinstance(line, str) and line:
        if not _LINE_RE.match(line):
            reasons.append(Reason("hotline_number", "format", f"hotline_number 必须是 3-8 位数字，收到 {line!r}"))
        elif line not in ctx.lines:
            reasons.append(Reason("hotline_number", "unknown_line", f"线路 {line} 不在热线登记表中"))
        elif ctx.allowed_lines and line not in ctx.allowed_lines:
            reasons.append(Reason(
                "hotline_number", "line_not_allowed",
                f"本来源只能报送 {'、'.join(sorted(ctx.allowed_lines))} 的记录，收到 {line}"))
    if reasons:
        return None, reasons
    extra = {k: v for k, v in record.items() if k not in clean and not k.startswith("_")}
    clean["_extra"] = extra
    return clean, []


def unstorable(record: Mapping[str, Any]) -> list[Reason]:
    """A reason for every value PostgreSQL would refuse to store whatever its field:
    a NUL character or a lone surrogate in any text (names included), NaN or
    Infinity in any number (Python's JSON reader accepts them, the ``jsonb`` cast does
    not). Nested values are named by their path (``extra.deep[1]``). Top-level names
    starting with ``_`` are not stored and not checked."""
    reasons: list[Reason] = []
    stack: list[tuple[str, Any]] = []
    for key, value in reversed(list(record.items())):
        if isinstance(key, str) and key.startswith("_"):
            continue
        if isinstance(key, str) and _UNSTORABLE.search(key):
            reasons.append(Reason(printable(key), "character",
                                  f"字段名含有 NUL 字符或孤立代理字符：{key!r}"))
        stack.append((str(key), value))
    while stack:
        path, value = stack.pop()
        vtype = type(value)
        if vtype is str:
            if _UNSTORABLE.search(value):
                reasons.append(Reason(printable(path), "character",
                                      f"{printable(path)} 含有 NUL 字符或孤立代理字符："
                                      f"{_shown(value)}"))
        elif vtype is float:
            if not math.isfinite(value):
                reasons.append(Reason(printable(path), "type",
                                      f"{printable(path)} 必须是有限的数字，收到 {value!r}"))
        elif vtype is dict:
            for k, v in reversed(value.items()):
                if isinstance(k, str) and _UNSTORABLE.search(k):
                    reasons.append(Reason(printable(f"{path}.{k}"), "character",
                                          f"字段名含有 NUL 字符或孤立代理字符：{k!r}"))
                stack.append((f"{path}.{k}", v))
        elif vtype is list:
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return reasons


def printable(text: str) -> str:
    """``text`` with every character PostgreSQL cannot store written as its escape."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def storable(value: Any) -> Any:
    """A copy of a received value that ``jsonb`` accepts (quarantine keeps records as
    received): NUL and lone surrogates become U+FFFD, NaN and Infinity their names."""
    vtype = type(value)
    if vtype is str:
        return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value
    if vtype is float and not math.isfinite(value):
        return repr(value)
    if vtype is dict:
        return {storable(k): storable(v) for k, v in value.items()}
    if vtype is list:
        return [storable(v) for v in value]
    return value


def _shown(value: str, limit: int = 80) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def event_time(kind: str, clean: Mapping[str, Any]) -> datetime | None:
    """The record's latest event time (timeliness = receipt time minus this)."""
    names = ("started_at", "answered_at", "ended_at") if kind == "calls" else (
        "created_at", "dispatched_at", "signed_at", "replied_at", "closed_at", "updated_at")
    times = [clean[n] for n in names if clean.get(n) is not None]
    return max(times) if times else None


def schema_document() -> dict[str, Any]:
    """The schema as published at ``GET /api/v1/ingest/schema``."""
    return {
        kind: {"fields": [f.to_json() for f in fields], "quality_mandatory": list(QUALITY_MANDATORY[kind])}
        for kind, fields in FIELDS.items()
    }
