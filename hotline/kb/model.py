"""Knowledge-base vocabulary: states, the transition table, material types, and the
validation of an article's content shared by the API and the importer."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATES = ("draft", "review", "published", "expired", "archived")
STATE_NAMES_ZH = {"draft": "草稿", "review": "待审核", "published": "已发布", "expired": "已过期", "archived": "已归档"}
MATERIAL_TYPES = ("办事指南", "法律法规", "热点问答", "日常咨询", "通知公告", "业务指引")
CONTENT_FIELDS = ("title", "category", "unit_code", "material_type", "hotlines", "keywords",
                  "body", "valid_from", "valid_to", "review_due")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TITLE = 128
MAX_BODY = 100_000
MAX_KEYWORDS = 30


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[str]
    target: str
    #: "editor" (the owner unit's editors and reviewers) or "reviewer"
    who: str
    zh: str


#: The article lifecycle, in one table.
TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(frozenset({"draft"}), "review", "editor", "提交审核"),
    "publish": Transition(frozenset({"review"}), "published", "reviewer", "审核发布"),
    "reject": Transition(frozenset({"review"}), "draft", "reviewer", "退回修改"),
    "expire": Transition(frozenset({"published"}), "expired", "reviewer", "设为过期"),
    "archive": Transition(frozenset({"draft", "review", "published", "expired"}), "archived", "reviewer", "归档"),
    "restore": Transition(frozenset({"expired", "archived"}), "draft", "editor", "恢复为草稿"),
}

#: A published article's pending revision (the live text stays visible): its own
#: small lifecycle; ``None`` as target means the revision leaves (applied or dropped).
REVISION_TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(frozenset({"draft"}), "review", "editor", "提交修订审核"),
    "publish": Transition(frozenset({"review"}), "", "reviewer", "发布修订"),
    "reject": Transition(frozenset({"review"}), "draft", "reviewer", "退回修订"),
    "discard": Transition(frozenset({"draft", "review"}), "", "editor", "放弃修订"),
}


def shown_value(value: Any) -> Any:
    """A bad value as a report shows it: dates as text, long text cut at 80 characters."""
    if isinstance(value, str) and len(value) > 80:
        return value[:80] + "…"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "value": shown_value(self.value)}


_LIST_SPLIT = re.compile(r"[,，;；、|\s]+")


def split_list(value: Any) -> list[str]:
    """A list given as a list or as text separated by commas, 、, semicolons or spaces."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p for p in (s.strip() for s in _LIST_SPLIT.split(value)) if p]
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value).strip()]


def parse_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if text.lower() in ("null", "none", "~"):
        return None
    return dt.date.fromisoformat(text.replace("/", "-"))


def validate_content(
    data: Mapping[str, Any],
    *,
    units: Mapping[str, str],
    hotlines: Iterable[str],
    partial: bool = False,
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Check and normalise content fields. ``units`` maps code → name (a name is
    accepted in place of a code); with ``partial`` only the given fields are checked.
    Returns ``(clean, problems)``; ``clean`` is usable only when problems is empty."""
    clean: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    known_lines = set(hotlines)
    by_name = {name: code for code, name in units.items()}

    def want(name: str) -> bool:
        return not partial or name in data

    if want("title"):
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append(FieldProblem("title", "标题不能为空", title))
        elif len(title.strip()) > MAX_TITLE:
            problems.append(FieldProblem("title", f"标题不能超过 {MAX_TITLE} 个字（现为 {len(title.strip())} 个）", title))
        else:
            clean["title"] = " ".join(title.split())
    if want("category"):
        category = data.get("category")
        parts = [p.strip() for p in str(category or "").replace("\\", "/").split("/")]
        parts = [p for p in parts if p]
        if not parts:
            problems.append(FieldProblem("category", "分类路径不能为空（如 人力社保/社会保险/关系转移）", category))
        elif len("/".join(parts)) > 256:
            problems.append(FieldProblem("category", "分类路径过长", category))
        else:
            clean["category"] = "/".join(parts)
    if want("unit_code"):
        unit = str(data.get("unit_code") or "").strip()
        if unit in units:
            clean["unit_code"] = unit
        elif unit in by_name:
            clean["unit_code"] = by_name[unit]
        else:
            problems.append(FieldProblem("unit_code", "发布单位不存在（请填单位代码或单位全称）", unit or None))
    if want("material_type"):
        kind = str(data.get("material_type") or "").strip()
        if kind not in MATERIAL_TYPES:
            problems.append(FieldProblem("material_type", "材料类型必须是：" + "、".join(MATERIAL_TYPES), kind or None))
        else:
            clean["material_type"] = kind
    if want("hotlines"):
        lines = split_list(data.get("hotlines"))
        unknown = [n for n in lines if n not in known_lines]
        if unknown:
            problems.append(FieldProblem("hotlines", "热线号码不存在：" + "、".join(unknown), unknown))
        else:
            clean["hotlines"] = sorted(set(lines), key=lines.index)
    if want("keywords"):
        words = split_list(data.get("keywords"))
        if len(words) > MAX_KEYWORDS or any(len(w) > 32 for w in words):
            problems.append(FieldProblem("keywords", f"关键词最多 {MAX_KEYWORDS} 个、每个不超过 32 字", words))
        else:
            clean["keywords"] = sorted(set(words), key=words.index)
    if want("body"):
        body = data.get("body")
        if not isinstance(body, str) or not body.strip():
            problems.append(FieldProblem("body", "正文不能为空", None))
        elif len(body) > MAX_BODY:
            problems.append(FieldProblem("body", f"正文不能超过 {MAX_BODY} 字", len(body)))
        else:
            clean["body"] = body.strip()
    for name in ("valid_from", "valid_to", "review_due"):
        if want(name):
            try:
                clean[name] = parse_date(data.get(name))
            except (TypeError, ValueError):
                problems.append(FieldProblem(name, "日期格式应为 YYYY-MM-DD", data.get(name)))
    vf, vt = clean.get("valid_from"), clean.get("valid_to")
    if vf and vt and vt < vf:
        problems.append(FieldProblem("valid_to", "有效期止不能早于有效期起", vt.isoformat()))
    return clean, problems
