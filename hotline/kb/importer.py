"""``hotline kb import``: Markdown with front matter, or CSV/XLSX in the practical item
format (category path, unique title ≤ 128, content, issuing unit, material type,
keywords; optional id, hotlines, validity and review dates).

An import is all or nothing: every bad row is reported by number and field and
nothing is written unless ``partial`` is asked for. Re-importing updates by id (or by
title when a row has no id): unchanged items are left alone, so importing the seed
directory again is a no-op.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from hotline.auth.audit import audit
from hotline.auth.model import User
from hotline.errors import ValidationError
from hotline.kb import articles
from hotline.kb.access import editor_scope
from hotline.kb.changes import record_articles
from hotline.kb.db import Db, hotline_numbers, savepoint
from hotline.kb.db import units as unit_names
from hotline.kb.model import CONTENT_FIELDS, ID_RE, STATES, shown_value, validate_content

HEADERS = {
    "id": ("id", "编号", "知识编号"),
    "category": ("category", "category_path", "分类", "分类路径", "类别", "目录"),
    "title": ("title", "标题", "知识标题"),
    "body": ("content", "body", "内容", "正文", "知识内容"),
    "unit_code": ("issuing_unit", "unit", "unit_code", "发布单位", "单位", "来源单位"),
    "material_type": ("material_type", "材料类型", "类型", "知识类型"),
    "keywords": ("keywords", "关键词", "关键字"),
    "hotlines": ("hotlines", "热线", "热线号码", "适用热线"),
    "valid_from": ("valid_from", "生效日期", "有效期起"),
    "valid_to": ("valid_to", "失效日期", "有效期止"),
    "review_due": ("review_due", "复核日期", "复审日期"),
}
REQUIRED = ("category", "title", "body", "unit_code", "material_type", "keywords")
_ALIASES = {alias.lower(): name for name, aliases in HEADERS.items() for alias in aliases}


class _FrontMatterLoader(yaml.SafeLoader):
    """Safe YAML that leaves dates as text, so a bad date is reported on its field
    instead of failing the whole file."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(slots=True)
class Item:
    row: int
    source: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    row: int
    source: str
    field: str
    message: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "source": self.source, "field": self.field, "message": self.message,
                "value": shown_value(self.value)}

    def __str__(self) -> str:
        shown = "" if self.value in (None, "") else f"（值：{self.to_json()['value']}）"
        return f"第 {self.row} 行 [{self.source}] {self.field}: {self.message}{shown}"


@dataclass(slots=True)
class ImportReport:
    total: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    bad_rows: int = 0
    written: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "created": len(self.created), "updated": len(self.updated),
                "unchanged": len(self.unchanged), "bad_rows": self.bad_rows, "written": self.written,
                "problems": [p.to_json() for p in self.problems],
                "warnings": [w.to_json() for w in self.warnings]}


# --- reading ---------------------------------------------------------------------------------

def read_markdown(text: str, *, row: int, source: str) -> tuple[Item | None, list[Problem]]:
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        return None, [Problem(row, source, "front_matter", "文件必须以 --- 开头的 YAML 头信息开始")]
    end = text.find("\n---", 3)
    if end == -1:
        return None, [Problem(row, source, "front_matter", "YAML 头信息没有以 --- 结束")]
    try:
        meta = yaml.load(text[3:end], Loader=_FrontMatterLoader)  # noqa: S506 (a SafeLoader)
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"（头信息第 {mark.line + 1} 行）" if mark is not None else ""
        return None, [Problem(row, source, "front_matter", f"YAML 无法解析{where}：{getattr(exc, 'problem', exc)}")]
    if not isinstance(meta, dict):
        return None, [Problem(row, source, "front_matter", "头信息必须是 键: 值 的映射")]
    body = text[end + 4:].split("\n", 1)[1] if "\n" in text[end + 4:] else ""
    data = {"id": meta.get("id"), "title": meta.get("title"), "category": meta.get("category"),
            "unit_code": meta.get("issuing_unit", meta.get("unit_code")), "material_type": meta.get("material_type"),
            "hotlines": meta.get("hotlines"), "keywords": meta.get("keywords"), "body": body,
            "valid_from": meta.get("valid_from"), "valid_to": meta.get("valid_to"),
            "review_due": meta.get("review_due")}
    problems = []
    for name in ("hotlines", "keywords"):
        value = data[name]
        if value is not None and not isinstance(value, list | str):
            problems.append(Problem(row, source, name, "应为列表", value))
    if data["hotlines"] is not None and isinstance(data["hotlines"], list):
        data["hotlines"] = [str(v) for v in data["hotlines"]]
    return Item(row, source, data), problems


def read_table(rows: Iterable[list[Any]], *, source: str) -> tuple[list[Item], list[Problem]]:
    iterator = iter(rows)
    try:
        header = next(iterator)
    except StopIteration:
        return [], [Problem(1, source, "header", "文件是空的")]
    columns: dict[int, str] = {}
    problems: list[Problem] = []
    for i, name in enumerate(header):
        key = _ALIASES.get(str(name or "").strip().lower())
        if key:
            columns[i] = key
    missing = [n for n in REQUIRED if n not in columns.values()]
    if missing:
        wanted = "、".join(f"{n}（{'/'.join(HEADERS[n][:4])}）" for n in missing)
        return [], [Problem(1, source, "header", f"缺少列：{wanted}")]
    items = []
    for number, values in enumerate(iterator, start=2):
        if not any(v not in (None, "") and str(v).strip() for v in values):
            continue
        data: dict[str, Any] = {}
        for i, key in columns.items():
            value = values[i] if i < len(values) else None
            data[key] = value.strip() if isinstance(value, str) else value
        if isinstance(data.get("id"), str) and not data["id"]:
            data["id"] = None
        if data.get("hotlines") is not None and not isinstance(data["hotlines"], str):
            data["hotlines"] = str(data["hotlines"])
        items.append(Item(number, source, data))
    return items, problems


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("utf-8", raw, 0, 1, "neither UTF-8 nor GB18030")


def read_path(path: Path) -> tuple[list[Item], list[Problem]]:
    """Items and parse problems of a file or of every .md/.csv/.xlsx under a directory."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    files = [f for f in files if f.suffix.lower() in (".md", ".csv", ".xlsx") and f.name.lower() != "readme.md"]
    items: list[Item] = []
    problems: list[Problem] = []
    base = path if path.is_dir() else path.parent
    md_row = 0
    for f in files:
        source = str(f.relative_to(base)) if f != base else f.name
        suffix = f.suffix.lower()
        if suffix == ".md":
            md_row += 1
            item, found = read_markdown(f.read_text(encoding="utf-8", errors="replace"), row=md_row, source=source)
            problems.extend(found)
            if item is not None:
                items.append(item)
        elif suffix == ".csv":
            try:
                text = _decode(f.read_bytes())
            except UnicodeDecodeError:
                problems.append(Problem(1, source, "encoding", "文件编码无法识别（请用 UTF-8 或 GBK）"))
                continue
            more, found = read_table(csv.reader(io.StringIO(text)), source=source)
            items.extend(more)
            problems.extend(found)
        else:
            more, found = _read_xlsx(f, source)
            items.extend(more)
            problems.extend(found)
    if not files:
        problems.append(Problem(0, str(path), "path", "没有找到 .md、.csv 或 .xlsx 文件"))
    return items, problems


def _read_xlsx(path: Path, source: str) -> tuple[list[Item], list[Problem]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        return [], [Problem(1, source, "file", f"无法读取 XLSX：{exc}")]
    try:
        sheet = book.worksheets[0]
        return read_table((list(r) for r in sheet.iter_rows(values_only=True)), source=source)
    finally:
        book.close()


# --- checking and writing --------------------------------------------------------------------

async def import_items(db: Db, items: list[Item], *, parse_problems: list[Problem] | None = None,
                       partial: bool = False, state: str = "published", max_items: int = 1000,
                       actor: str = "import", today: dt.date | None = None,
                       allowed_units: set[str] | None = None) -> ImportReport:
    """Check every item, then write all of them in one transaction (or only the good
    ones with ``partial``). ``allowed_units`` (a unit editor's scope) limits the items
    to those units and to new articles or drafts (published ones change by review)."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}")
    today = today or await db.fetchval("SELECT current_date")
    report = ImportReport(problems=list(parse_problems or []))
    parsed = {(i.source, i.row) for i in items}
    report.total = len(items) + len({(p.source, p.row) for p in report.problems
                                     if p.row > 0 and (p.source, p.row) not in parsed})
    if len(items) > max_items:
        report.problems.append(Problem(0, "", "items", f"一次最多导入 {max_items} 条，本次 {len(items)} 条；请分批导入"))
        report.bad_rows = len(items)
        return report
    units = await unit_names(db)
    lines = await hotline_numbers(db)
    unit_lines: dict[str, list[str]] = {}
    for r in await db.fetch("SELECT number, unit_code FROM hotlines WHERE active AND unit_code IS NOT NULL"):
        unit_lines.setdefault(r["unit_code"], []).append(r["number"])
    existing = {r["id"]: r for r in await db.fetch("SELECT id, title, unit_code, state FROM kb_articles")}
    existing_titles = {r["title"]: r["id"] for r in existing.values()}
    seen_ids: dict[str, int] = {}
    seen_titles: dict[str, int] = {}
    good: list[tuple[Item, dict[str, Any]]] = []
    bad_rows = {(p.source, p.row) for p in report.problems}
    for item in items:
        clean, found = validate_content(item.data, units=units, hotlines=lines)
        problems = [Problem(item.row, item.source, p.field, p.message, p.value) for p in found]
        article_id = item.data.get("id")
        if article_id is not None:
            article_id = str(article_id).strip()
            if not ID_RE.match(article_id):
                problems.append(Problem(item.row, item.source, "id", "编号只能包含字母、数字、-、_、.（最长 64）",
                                        article_id))
            elif article_id in seen_ids:
                problems.append(Problem(item.row, item.source, "id", f"编号与第 {seen_ids[article_id]} 行重复",
                                        article_id))
            else:
                seen_ids[article_id] = item.row
        title = clean.get("title")
        if title:
            if title in seen_titles:
                problems.append(Problem(item.row, item.source, "title", f"标题与第 {seen_titles[title]} 行重复", title))
            else:
                seen_titles[title] = item.row
            owner = existing_titles.get(title)
            if owner is not None and article_id is not None and owner != article_id:
                problems.append(Problem(item.row, item.source, "title", f"标题已被知识 {owner} 使用", title))
            if article_id is None and owner is not None:
                article_id = owner
        if allowed_units is not None:
            current = existing.get(article_id) if article_id else None
            if clean.get("unit_code") and clean["unit_code"] not in allowed_units:
                problems.append(Problem(item.row, item.source, "unit_code", "只能导入本单位的知识", clean["unit_code"]))
            elif current is not None and (current["unit_code"] not in allowed_units or current["state"] != "draft"):
                problems.append(Problem(item.row, item.source, "id",
                                        "该知识已存在且不是本单位的草稿，请在控制台修改（修改需审核）", article_id))
        if problems:
            report.problems.extend(problems)
            bad_rows.add((item.source, item.row))
            continue
        if not clean.get("hotlines"):
            clean["hotlines"] = sorted(unit_lines.get(clean["unit_code"], []))
        if clean.get("valid_from") is None:
            clean["valid_from"] = today
        clean["id"] = article_id
        if clean.get("valid_to") is not None and clean["valid_to"] < today:
            report.warnings.append(Problem(item.row, item.source, "valid_to",
                                           f"有效期已于 {clean['valid_to']} 结束，导入为“已过期”", clean["valid_to"]))
        good.append((item, clean))
    report.bad_rows = len(bad_rows)
    if report.problems and not partial:
        return report
    if not good:
        return report
    async with savepoint(db) as conn:
        changed_ids: list[str] = []
        for _item, clean in good:
            outcome, article_id = await _upsert(conn, clean, state=state, actor=actor, today=today)
            getattr(report, outcome).append(article_id)
            if outcome != "unchanged":
                changed_ids.append(article_id)
        if changed_ids:
            await record_articles(conn, changed_ids)
    report.written = True
    return report


async def _upsert(conn: Any, clean: dict[str, Any], *, state: str, actor: str, today: dt.date) -> tuple[str, str]:
    content = {k: clean.get(k) for k in CONTENT_FIELDS}
    article_id: str = clean.get("id") or await articles.next_id(conn, clean["unit_code"])
    row = await conn.fetchrow(f"SELECT {articles.ARTICLE_COLUMNS} FROM kb_articles WHERE id = $1 FOR UPDATE",  # noqa: S608
                              article_id)
    if row is None:
        initial = "expired" if (state == "published" and content["valid_to"] and content["valid_to"] < today) else state
        await conn.execute(
            """INSERT INTO kb_articles (id, title, category, unit_code, material_type, hotlines, keywords, body,
                   valid_from, valid_to, review_due, state, source, published_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'import',
                       CASE WHEN $12 = 'published' THEN now() END)""",
            article_id, content["title"], content["category"], content["unit_code"], content["material_type"],
            content["hotlines"], content["keywords"], content["body"], content["valid_from"], content["valid_to"],
            content["review_due"], initial)
        await articles.record_history(conn, article_id, 1, "import", state_from=None, state_to=initial,
                             changed=list(CONTENT_FIELDS), snapshot=articles.snapshot(content), actor_name=actor)
        return "created", article_id
    changed = [k for k in CONTENT_FIELDS if content[k] != row[k]]
    if not changed:
        return "unchanged", article_id
    version = row["version"] + 1
    await conn.execute(
        """UPDATE kb_articles SET title = $2, category = $3, unit_code = $4, material_type = $5, hotlines = $6,
                  keywords = $7, body = $8, valid_from = $9, valid_to = $10, review_due = $11, version = $12,
                  updated_at = now(), updated_by = NULL
            WHERE id = $1""",
        article_id, content["title"], content["category"], content["unit_code"], content["material_type"],
        content["hotlines"], content["keywords"], content["body"], content["valid_from"], content["valid_to"],
        content["review_due"], version)
    await articles.record_history(conn, article_id, version, "import", state_from=row["state"], state_to=row["state"],
                         changed=changed, snapshot=articles.snapshot(content), actor_name=actor)
    return "updated", article_id


async def import_path(db: Db, path: Path, **options: Any) -> ImportReport:
    items, problems = read_path(path)
    return await import_items(db, items, parse_problems=problems, **options)


async def import_as(pool: asyncpg.Pool, user: User, items: list[Item], problems: list[Problem], *,
                    partial: bool = False, dry_run: bool = False, max_items: int = 1000,
                    remote_addr: str | None = None) -> ImportReport:
    """An editor's import (console upload): a unit's editors import their unit's
    articles as drafts for review; reviewers of every unit import published articles.
    ``dry_run`` checks and reports without keeping anything."""
    scope = await editor_scope(pool, user)
    if scope is not None and not scope:
        raise ValidationError("只有知识编辑可以导入", field="body")
    state = "published" if scope is None else "draft"
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            report = await import_items(conn, items, parse_problems=problems, partial=partial, state=state,
                                        max_items=max_items, actor=user.username, allowed_units=scope)
        except BaseException:
            await tx.rollback()
            raise
        if dry_run:
            await tx.rollback()
            report.written = False
            return report
        try:
            if report.written:
                await audit(conn, "kb_import", user=user, object_type="kb_import",
                            detail={"created": len(report.created), "updated": len(report.updated)},
                            remote_addr=remote_addr)
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
    return report
