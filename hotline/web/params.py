"""The one request-parsing layer: typed query parameters and JSON bodies checked
against the schema a route declares in ``@api_doc``.

Every refusal is a :class:`~hotline.errors.ValidationError` (HTTP 400, the error
middleware's ``{"error": {"code", "message", "field", "value"}}``) whose message, in
Chinese for console users, names the field and the value. Stable codes:

=================  ===========================================================
``invalid_json``   the body is not JSON, or not the declared top-level type
``missing_field``  a required body field is absent
``invalid_type``   a body field has the wrong JSON type
``invalid_choice`` a value outside the declared ``enum``
``out_of_range``   a number outside ``minimum..maximum`` (a page's ``limit`` is
                   always 1..the route's maximum), a text or list too short/long
``invalid_format`` a text that does not match the declared ``pattern``
``invalid_integer``  a query parameter that is not an integer
``invalid_boolean``  a query parameter that is not ``true``/``false`` (or ``1``/``0``)
``invalid_date``   a query parameter that is not an ISO date (``2026-11-30``)
=================  ===========================================================

Booleans have one meaning everywhere: ``true``/``1`` and ``false``/``0``; anything
else (``yes``, ``on``) is refused rather than read as one or the other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, overload

from aiohttp import web

from hotline.errors import ValidationError

#: the most a list route returns in one page unless it says otherwise
MAX_PAGE = 1000
TRUE = frozenset({"true", "1"})
FALSE = frozenset({"false", "0"})


def invalid(code: str, message: str, *, field: str, value: Any = None) -> ValidationError:
    exc = ValidationError(message, field=field, value=value)
    exc.code = code
    return exc


# -- query parameters -------------------------------------------------------------------

@overload
def param_int(params: Mapping[str, str], name: str, default: int, *, low: int = 1, high: int = MAX_PAGE) -> int: ...
@overload
def param_int(params: Mapping[str, str], name: str, default: None, *, low: int = 1,
              high: int = MAX_PAGE) -> int | None: ...
def param_int(params: Mapping[str, str], name: str, default: int | None, *, low: int = 1,
              high: int = MAX_PAGE) -> int | None:
    """An integer parameter within ``low..high`` (a page's ``limit``, ``offset``, an id
    cursor) from any mapping (a query string, a form), or ``default`` when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid("invalid_integer", f"参数 {name} 必须是整数，收到 {raw!r}", field=name, value=raw) from None
    if not low <= value <= high:
        raise invalid("out_of_range", f"参数 {name} 必须在 {low} 到 {high} 之间，收到 {value}",
                      field=name, value=raw)
    return value


@overload
def query_int(request: web.Request, name: str, default: int, *, low: int = 1, high: int = MAX_PAGE) -> int: ...
@overload
def query_int(request: web.Request, name: str, default: None, *, low: int = 1, high: int = MAX_PAGE) -> int | None: ...
def query_int(request: web.Request, name: str, default: int | None, *, low: int = 1, high: int = MAX_PAGE) -> int | None:
    """:func:`param_int` over the request's query string."""
    return param_int(request.query, name, default, low=low, high=high)


def param_bool(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise invalid("invalid_boolean", f"参数 {name} 必须是 true 或 false，收到 {raw!r}", field=name, value=raw)


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter: ``true``/``1`` or ``false``/``0``; absent: ``default``."""
    return param_bool(request.query, name, default)


def query_optional_bool(request: web.Request, name: str) -> bool | None:
    """A boolean filter that may be left out (None: no filter)."""
    if not request.query.get(name):
        return None
    return param_bool(request.query, name)


def query_date(request: web.Request, name: str, default: date | None = None) -> date | None:
    """An ISO date (``2026-11-30``), or ``default`` when absent."""
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid("invalid_date", f"参数 {name} 必须是日期（如 2026-11-30），收到 {raw!r}",
                      field=name, value=raw) from None


def query_datetime(request: web.Request, name: str) -> datetime | None:
    """An ISO date-time (``2026-11-30T08:00:00+08:00``; a bare date is midnight)."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise invalid("invalid_date", f"参数 {name} 必须是日期时间（如 2026-11-30T08:00:00+08:00），收到 {raw!r}",
                      field=name, value=raw) from None


def path_int(request: web.Request, name: str = "id") -> int:
    """A numeric path segment (``/calls/{id}``)."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise invalid("invalid_integer", f"{name} 必须是数字，收到 {raw!r}", field=name, value=raw)
    return int(raw)


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def paging(request: web.Request, *, default: int = 50, high: int = MAX_PAGE) -> Page:
    """``?limit`` (1..``high``, default ``default``) and ``?offset`` (≥ 0)."""
    return Page(query_int(request, "limit", default, low=1, high=high),
                query_int(request, "offset", 0, low=0, high=2**31 - 1))


def check_query(params: Mapping[str, str], declared: Mapping[str, Any]) -> None:
    """Check the parameters a route declares (``@api_doc(query=...)``) by their schema:
    integers (``limit`` always 1..``maximum``/:data:`MAX_PAGE`, ``offset`` ≥ 0), booleans,
    dates and ``enum`` choices. Undeclared parameters are the handler's business."""
    for name, schema in declared.items():
        raw = params.get(name)
        if raw is None or raw == "" or not isinstance(schema, Mapping):
            continue
        kind = schema.get("type")
        if kind == "integer":
            low = schema.get("minimum", 1 if name == "limit" else 0 if name == "offset" else -(2**63))
            high = schema.get("maximum", MAX_PAGE if name == "limit" else 2**63 - 1)
            param_int(params, name, None, low=low, high=high)
        elif kind == "boolean":
            param_bool(params, name)
        elif kind == "string" and schema.get("format") == "date":
            try:
                date.fromisoformat(raw)
            except ValueError:
                raise invalid("invalid_date", f"参数 {name} 必须是日期（如 2026-11-30），收到 {raw!r}",
                              field=name, value=raw) from None
        if "enum" in schema and raw not in [str(v) for v in schema["enum"]]:
            raise invalid("invalid_choice", f"参数 {name} 必须是 {'、'.join(map(str, schema['enum']))} 之一，"
                          f"收到 {raw!r}", field=name, value=raw)


# -- bodies -----------------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}
_TYPE_NAMES = {"object": "对象", "array": "列表", "string": "文本", "integer": "整数", "number": "数字",
               "boolean": "true 或 false", "null": "null"}


_ITEM = re.compile(r"\[\d+\]")


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES.get(kind, (object,)))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(value: Any, schema: Mapping[str, Any], path: str = "body") -> None:
    """Check ``value`` against the JSON-schema subset the routes declare (type, enum,
    required, properties, items, minimum/maximum, minLength/maxLength, minItems/maxItems,
    pattern, format date/date-time). Every problem is found: the error names the first
    (``field``, ``code``) and lists all of them under ``problems``."""
    problems: list[ValidationError] = []
    _check(value, schema, path, problems)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first.details["problems"] = [
                {"field": p.field, "code": p.code, "message": p.message} for p in problems]
            first.message = "；".join(p.message for p in problems)
        raise first


def _check(value: Any, schema: Mapping[str, Any], path: str, problems: list[ValidationError]) -> None:
    def refuse(code: str, message: str, *, with_value: bool = True) -> None:
        # the field is the property (``roles``); the message names the item (``roles[0]``)
        field = _ITEM.sub("", path)
        problems.append(invalid(code, message, field=field, value=value if with_value else None))

    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, k) for k in kinds):
            wanted = "或".join(_TYPE_NAMES.get(k, k) for k in kinds)
            if path == "body":
                refuse("invalid_json", f"请求体必须是 JSON {wanted}", with_value=False)
            else:
                refuse("invalid_type", f"{path} 必须是{wanted}，收到 {_show(value)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        choices = "、".join(str(v) for v in schema["enum"])
        refuse("invalid_choice", f"{path} 必须是 {choices} 之一，收到 {_show(value)}")
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            refuse("out_of_range", f"{path} 不能小于 {schema['minimum']}，收到 {value}")
        elif "maximum" in schema and value > schema["maximum"]:
            refuse("out_of_range", f"{path} 不能大于 {schema['maximum']}，收到 {value}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            refuse("out_of_range", f"{path} 至少 {schema['minLength']} 个字符，收到 {_show(value)}")
        elif "maxLength" in schema and len(value) > schema["maxLength"]:
            refuse("out_of_range", f"{path} 最多 {schema['maxLength']} 个字符，收到 {len(value)} 个字符",
                   with_value=False)
        elif "pattern" in schema and not re.search(schema["pattern"], value):
            refuse("invalid_format", f"{path} 格式不对，收到 {_show(value)}")
        elif schema.get("format") in ("date", "date-time") and value:
            try:
                (date if schema["format"] == "date" else datetime).fromisoformat(value)
            except ValueError:
                example = "2026-11-30" if schema["format"] == "date" else "2026-11-30T08:00:00+08:00"
                refuse("invalid_format", f"{path} 必须是日期（如 {example}），收到 {_show(value)}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            refuse("out_of_range", f"{path} 至少要有 {schema['minItems']} 项", with_value=False)
        elif "maxItems" in schema and len(value) > schema["maxItems"]:
            refuse("out_of_range", f"{path} 最多 {schema['maxItems']} 项，收到 {len(value)} 项", with_value=False)
        else:
            items = schema.get("items")
            if isinstance(items, Mapping):
                for i, item in enumerate(value):
                    _check(item, items, f"{path}[{i}]", problems)
    if isinstance(value, dict):
        prefix = "" if path == "body" else f"{path}."
        required = set(schema.get("required", ()))
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(invalid("missing_field", f"缺少字段 {prefix}{name}", field=f"{prefix}{name}"))
        for name, sub in (schema.get("properties") or {}).items():
            # an optional field sent as null is read as absent (the handlers always have)
            if name in value and isinstance(sub, Mapping) and (value[name] is not None or name in required):
                _check(value[name], sub, f"{prefix}{name}", problems)


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or the ``invalid_json`` refusal naming the problem."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid("invalid_json", f"请求体不是有效的 JSON：{exc}", field="body") from None
