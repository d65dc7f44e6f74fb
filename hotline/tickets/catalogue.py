"""The category code table (tree), handling units and the dispatch catalogue
(category → default lead unit), seeded from config/categories.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from hotline.config import SHIPPED_CONFIG_DIR, ConfigFiles, packaged_files, read_yaml
from hotline.errors import ConfigError, Conflict, NotFound, ValidationError

CATEGORIES_FILE = SHIPPED_CONFIG_DIR / "categories.yaml"
UNIT_KINDS = ("department", "district", "street", "enterprise", "centre", "other")


def load_categories_file(path: Path = CATEGORIES_FILE) -> tuple[dict[str, Any], ...]:
    """The category table, checked (unique codes with names, parents listed first)."""
    data = read_yaml(path) or {}
    items = tuple(data.get("categories") or ())
    seen: set[str] = set()
    for i, c in enumerate(items):
        code = str(c.get("code", ""))
        if not code or code in seen or not c.get("name"):
            raise ConfigError(f"{path}: categories[{i}] needs a unique code and a name")
        if c.get("parent") and str(c["parent"]) not in seen:
            raise ConfigError(f"{path}: categories[{i}] parent {c['parent']!r} must come before it")
        seen.add(code)
    return items


def categories_for(files: ConfigFiles | None) -> tuple[dict[str, Any], ...]:
    """The node's ``categories.yaml`` (its ``config_dir``, else the packaged file), parsed
    once per node (``runtime.files``); with no files, the packaged file."""
    return (files or packaged_files()).load("categories.yaml", load_categories_file)


async def seed_categories(conn: asyncpg.Connection, files: ConfigFiles | None = None) -> dict[str, Any]:
    """Insert missing categories and catalogue entries; entries naming a unit that
    does not exist yet (registry not synced) are skipped and reported."""
    added, skipped = 0, []
    async with conn.transaction():
        for i, c in enumerate(categories_for(files)):
            inserted = await conn.fetchval(
                """INSERT INTO ticket_categories (code, name, parent_code, sort) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (code) DO NOTHING RETURNING code""",
                str(c["code"]), c["name"], str(c["parent"]) if c.get("parent") else None, i,
            )
            added += inserted is not None
            if c.get("unit"):
                if not await conn.fetchval("SELECT true FROM units WHERE code = $1", c["unit"]):
                    skipped.append(f"{c['code']}→{c['unit']}")
                    continue
                await conn.execute(
                    """INSERT INTO dispatch_catalogue (category_code, unit_code) VALUES ($1, $2)
                       ON CONFLICT (category_code) DO NOTHING""",
                    str(c["code"]), c["unit"],
                )
    return {"categories_added": added, "catalogue_skipped": skipped}


async def category_tree(conn: asyncpg.Connection | asyncpg.Pool, *, include_inactive: bool = False) -> list[dict]:
    rows = await conn.fetch(
        """SELECT c.code, c.name, c.parent_code, c.active, d.unit_code AS default_unit
             FROM ticket_categories c LEFT JOIN dispatch_catalogue d ON d.category_code = c.code
            WHERE $1 OR c.active ORDER BY c.sort, c.code""",
        include_inactive,
    )
    nodes = {r["code"]: {**dict(r), "children": []} for r in rows}
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_code"]) if node["parent_code"] else None
        (parent["children"] if parent else roots).append(node)
    return roots


async def save_category(conn: asyncpg.Connection, code: str, body: dict[str, Any], *, create: bool) -> dict:
    name, parent, active = body.get("name"), body.get("parent_code"), body.get("active")
    if create and (not isinstance(name, str) or not name.strip()):
        raise ValidationError(f"请填写分类名称 name，收到 {name!r}", field="name", value=name, code="missing_field")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 64):
        raise ValidationError(f"分类名称 name 须为 1-64 个字，收到 {name!r}", field="name", value=name,
                              code="out_of_range")
    if active is not None and not isinstance(active, bool):
        raise ValidationError(f"active 必须是 true 或 false，收到 {active!r}", field="active", value=active,
                              code="invalid_type")
    async with conn.transaction():
        if parent is not None:
            if parent == code:
                raise ValidationError(f"分类 {code!r} 不能是自己的上级", field="parent_code", value=parent,
                                      code="invalid_parent")
            ancestors = await conn.fetch(
                """WITH RECURSIVE up(code) AS (SELECT $1::text UNION
                       SELECT c.parent_code FROM ticket_categories c JOIN up ON c.code = up.code
                        WHERE c.parent_code IS NOT NULL) SELECT code FROM up""", parent)
            if not await conn.fetchval("SELECT true FROM ticket_categories WHERE code = $1", parent):
                raise ValidationError(f"未知的上级分类 {parent!r}", field="parent_code", value=parent,
                                      code="unknown_category")
            if code in {r["code"] for r in ancestors}:
                raise ValidationError(f"分类 {parent!r} 在 {code!r} 之下：会形成循环", field="parent_code", value=parent,
                                      code="invalid_parent")
        if create:
            try:
                await conn.execute(
                    "INSERT INTO ticket_categories (code, name, parent_code, sort) "
                    "VALUES ($1, $2, $3, (SELECT coalesce(max(sort), 0) + 1 FROM ticket_categories))",
                    code, str(name).strip(), parent)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"分类 {code!r} 已存在", field="code", value=code, code="category_exists") from None
            except asyncpg.CheckViolationError:
                raise ValidationError(f"分类代码 {code!r} 须为 1-32 位字母、数字或 . _ -", field="code", value=code,
                                      code="invalid_format") from None
        else:
            result = await conn.execute(
                """UPDATE ticket_categories SET name = coalesce($2, name),
                          parent_code = CASE WHEN $4 THEN $3 ELSE parent_code END,
                          active = coalesce($5, active), updated_at = now() WHERE code = $1""",
                code, name.strip() if name else None, parent, "parent_code" in body, active)
            if result.endswith(" 0"):
                raise NotFound(f"没有分类 {code!r}", field="code", value=code)
        row = await conn.fetchrow("SELECT code, name, parent_code, active FROM ticket_categories WHERE code = $1",
                                  code)
        return dict(row)


async def default_unit(conn: asyncpg.Connection, category_code: str | None) -> str | None:
    """The catalogue's lead unit for a category, inherited from the nearest ancestor."""
    if category_code is None:
        return None
    return await conn.fetchval(
        """WITH RECURSIVE up(code, depth) AS (SELECT $1::text, 0 UNION ALL
               SELECT c.parent_code, up.depth + 1 FROM ticket_categories c JOIN up ON c.code = up.code
                WHERE c.parent_code IS NOT NULL)
           SELECT d.unit_code FROM up JOIN dispatch_catalogue d ON d.category_code = up.code
             JOIN units u ON u.code = d.unit_code AND u.active
            ORDER BY up.depth LIMIT 1""",
        category_code,
    )


async def set_catalogue(conn: asyncpg.Connection, category_code: str, unit_code: str | None, *,
                        user_id: int | None, note: str = "") -> dict | None:
    if not await conn.fetchval("SELECT true FROM ticket_categories WHERE code = $1", category_code):
        raise NotFound(f"没有分类 {category_code!r}", field="category_code", value=category_code)
    if unit_code is None:
        await conn.execute("DELETE FROM dispatch_catalogue WHERE category_code = $1", category_code)
        return None
    await check_unit(conn, unit_code, "unit_code")
    row = await conn.fetchrow(
        """INSERT INTO dispatch_catalogue (category_code, unit_code, note, updated_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (category_code) DO UPDATE SET unit_code = EXCLUDED.unit_code, note = EXCLUDED.note,
               updated_by = EXCLUDED.updated_by, updated_at = now()
           RETURNING category_code, unit_code, note, updated_at""",
        category_code, unit_code, note, user_id)
    return dict(row)


async def list_catalogue(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict]:
    rows = await conn.fetch(
        """SELECT d.category_code, c.name AS category_name, d.unit_code, u.name AS unit_name, d.note, d.updated_at
             FROM dispatch_catalogue d JOIN ticket_categories c ON c.code = d.category_code
             JOIN units u ON u.code = d.unit_code ORDER BY c.sort, d.category_code""")
    return [dict(r) for r in rows]


async def check_unit(conn: asyncpg.Connection, unit_code: Any, field: str) -> str:
    if not isinstance(unit_code, str) or not unit_code:
        raise ValidationError(f"{field} 必须是单位代码，收到 {unit_code!r}", field=field, value=unit_code,
                              code="invalid_type")
    active = await conn.fetchval("SELECT active FROM units WHERE code = $1", unit_code)
    if active is None:
        raise ValidationError(f"未知的单位 {unit_code!r}", field=field, value=unit_code, code="unknown_unit")
    if not active:
        raise ValidationError(f"单位 {unit_code!r} 已停用", field=field, value=unit_code, code="inactive_unit")
    return unit_code


async def list_units(conn: asyncpg.Connection | asyncpg.Pool, *, include_inactive: bool = False) -> list[dict]:
    rows = await conn.fetch(
        """SELECT u.code, u.name, u.parent_code, u.kind, u.contact_phone, u.active, u.region_code,
                  coalesce(array_agg(x.id ORDER BY x.id) FILTER (WHERE x.id IS NOT NULL), '{}') AS liaison_ids
             FROM units u LEFT JOIN users x ON x.unit_code = u.code AND 'liaison' = ANY(x.roles) AND x.active
            WHERE $1 OR u.active GROUP BY u.code ORDER BY u.kind, u.code""", include_inactive)
    return [dict(r) for r in rows]


async def save_unit(conn: asyncpg.Connection, code: str, body: dict[str, Any], *, create: bool) -> dict:
    allowed = {"name", "parent_code", "kind", "contact_phone", "active", "region_code"}
    unknown = set(body) - allowed
    if unknown:
        raise ValidationError(f"不能设置字段 {'、'.join(sorted(unknown))}；可设置的字段：{'、'.join(sorted(allowed))}",
                              field=sorted(unknown)[0], value=sorted(unknown), code="unknown_field")
    if "kind" in body and body["kind"] not in UNIT_KINDS:
        raise ValidationError(f"单位类型 kind 必须是 {'、'.join(UNIT_KINDS)} 之一，收到 {body['kind']!r}", field="kind",
                              value=body["kind"], code="invalid_choice")
    if create and not (isinstance(body.get("name"), str) and body["name"].strip()):
        raise ValidationError(f"请填写单位名称 name，收到 {body.get('name')!r}", field="name", value=body.get("name"),
                              code="missing_field")
    if body.get("parent_code") is not None:
        if body["parent_code"] == code:
            raise ValidationError(f"单位 {code!r} 不能是自己的上级", field="parent_code", value=code,
                                  code="invalid_parent")
        await check_unit(conn, body["parent_code"], "parent_code")
    if body.get("region_code") is not None and not await conn.fetchval(
            "SELECT active FROM regions WHERE code = $1", body["region_code"]):
        raise ValidationError(f"未知或已停用的区划代码 {body['region_code']!r}", field="region_code")
    try:
        if create:
            await conn.execute(
                "INSERT INTO units (code, name, parent_code, kind, contact_phone, region_code) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                code, body["name"].strip(), body.get("parent_code"), body.get("kind", "department"),
                body.get("contact_phone", ""), body.get("region_code"))
        else:
            sets, args = [], [code]
            for key in ("name", "parent_code", "kind", "contact_phone", "active", "region_code"):
                if key in body:
                    args.append(body[key])
                    sets.append(f"{key} = ${len(args)}")
            if sets:
                result = await conn.execute(
                    f"UPDATE units SET {', '.join(sets)}, updated_at = now() WHERE code = $1", *args)  # noqa: S608
                if result.endswith(" 0"):
                    raise NotFound(f"没有单位 {code!r}", field="code", value=code)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"单位 {code!r} 已存在", field="code", value=code, code="unit_exists") from None
    except asyncpg.CheckViolationError:
        raise ValidationError(f"单位代码 {code!r} 须为小写字母、数字、- 或 _", field="code", value=code,
                              code="invalid_format") from None
    row = await conn.fetchrow(
        "SELECT code, name, parent_code, kind, contact_phone, active, region_code FROM units WHERE code = $1", code)
    if row is None:
        raise NotFound(f"没有单位 {code!r}", field="code", value=code)
    return dict(row)
