"""Regions (属地): the GB/T 2260 tree tickets are filed under, the units bound to
regions, the region x category dispatch rules and the unit suggested for a ticket.
Seeded from ``config/regions.yaml`` (missing codes only), edited through the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg

from hotline.config import SHIPPED_CONFIG_DIR, ConfigFiles, packaged_files, read_yaml
from hotline.errors import ConfigError, Conflict, NotFound, ValidationError

REGIONS_FILE = SHIPPED_CONFIG_DIR / "regions.yaml"
LEVELS = ("city", "district", "street", "community")
LEVEL_NAMES_ZH = {"city": "市", "district": "区县", "street": "街道乡镇", "community": "社区村"}
_CODE_LENGTH = {"city": 6, "district": 6, "street": 9, "community": 12}
_CODE = re.compile(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")


def check_code(code: Any, level: str, parent: str | None, field: str = "code") -> str:
    if not isinstance(code, str) or not _CODE.match(code):
        raise ValidationError(f"区划代码 {code!r} 须为 GB/T 2260 代码（6、9 或 12 位数字）", field=field)
    if len(code) != _CODE_LENGTH[level]:
        raise ValidationError(f"{LEVEL_NAMES_ZH[level]}级区划代码须为 {_CODE_LENGTH[level]} 位，得到 {code!r}",
                              field=field)
    if parent is not None and len(code) > 6 and not code.startswith(parent[:len(code) - 3]):
        raise ValidationError(f"区划代码 {code!r} 与上级 {parent!r} 不符", field=field)
    return code


def load_regions_file(path: Path = REGIONS_FILE) -> tuple[dict[str, Any], ...]:
    """The seed tree, checked: codes by level, parents listed first."""
    data = read_yaml(path) or {}
    items = tuple(data.get("regions") or ())
    seen: set[str] = set()
    for i, r in enumerate(items):
        code, level, parent = str(r.get("code", "")), r.get("level"), r.get("parent")
        if level not in LEVELS or not r.get("name") or code in seen:
            raise ConfigError(f"{path}: regions[{i}] needs a unique code, a name and a level in {list(LEVELS)}")
        if parent is not None and str(parent) not in seen:
            raise ConfigError(f"{path}: regions[{i}] parent {parent!r} must come before it")
        try:
            check_code(code, level, str(parent) if parent else None)
        except ValidationError as exc:
            raise ConfigError(f"{path}: regions[{i}]: {exc}") from None
        seen.add(code)
    return items


def regions_for(files: ConfigFiles | None) -> tuple[dict[str, Any], ...]:
    """The node's ``regions.yaml`` (its ``config_dir``, else the packaged file), parsed once
    per node (``runtime.files``); with no files, the packaged file."""
    return (files or packaged_files()).load("regions.yaml", load_regions_file)


async def seed_regions(conn: asyncpg.Connection, files: ConfigFiles | None = None) -> dict[str, Any]:
    """Insert missing regions; bind a region's unit when the unit exists and has no
    region yet (bindings changed through the API are kept)."""
    added, bound = 0, 0
    async with conn.transaction():
        for i, r in enumerate(regions_for(files)):
            inserted = await conn.fetchval(
                """INSERT INTO regions (code, name, level, parent_code, sort) VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (code) DO NOTHING RETURNING code""",
                str(r["code"]), r["name"], r["level"], str(r["parent"]) if r.get("parent") else None, i)
            added += inserted is not None
            if r.get("unit"):
                result = await conn.execute(
                    "UPDATE units SET region_code = $2 WHERE code = $1 AND region_code IS NULL",
                    r["unit"], str(r["code"]))
                bound += int(result.split()[-1])
    return {"regions_added": added, "units_bound": bound}


async def region_tree(conn: asyncpg.Connection | asyncpg.Pool, *, include_inactive: bool = False) -> list[dict]:
    rows = await conn.fetch(
        """SELECT r.code, r.name, r.level, r.parent_code, r.active,
                  coalesce(array_agg(u.code ORDER BY u.code) FILTER (WHERE u.code IS NOT NULL), '{}') AS units
             FROM regions r LEFT JOIN units u ON u.region_code = r.code AND u.active
            WHERE $1 OR r.active GROUP BY r.code ORDER BY r.sort, r.code""", include_inactive)
    nodes = {r["code"]: {**dict(r), "units": list(r["units"]), "children": []} for r in rows}
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_code"]) if node["parent_code"] else None
        (parent["children"] if parent else roots).append(node)
    return roots


async def check_region(conn: asyncpg.Connection, code: Any, field: str = "region_code") -> str | None:
    if code is None:
        return None
    active = await conn.fetchval("SELECT active FROM regions WHERE code = $1", code) if isinstance(code, str) else None
    if active is None:
        raise ValidationError(f"未知的区划代码 {code!r}", field=field, value=code, code="unknown_region")
    if not active:
        raise ValidationError(f"区划 {code!r} 已停用", field=field, value=code, code="inactive_region")
    return str(code)


async def save_region(conn: asyncpg.Connection, code: str, body: dict[str, Any], *, create: bool,
                      user_id: int | None) -> dict[str, Any]:
    allowed = {"name", "level", "parent_code", "active"}
    unknown = set(body) - allowed
    if unknown:
        raise ValidationError(f"不能设置字段 {'、'.join(sorted(unknown))}；可设置的字段：{'、'.join(sorted(allowed))}",
                              field=sorted(unknown)[0], value=sorted(unknown), code="unknown_field")
    name = body.get("name")
    if (create or name is not None) and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 64):
        raise ValidationError(f"名称 name 须为 1-64 个字，收到 {name!r}", field="name", value=name, code="out_of_range")
    if "active" in body and not isinstance(body["active"], bool):
        raise ValidationError(f"active 必须是 true 或 false，收到 {body['active']!r}", field="active",
                              value=body["active"], code="invalid_type")
    async with conn.transaction():
        current = await conn.fetchrow("SELECT * FROM regions WHERE code = $1 FOR UPDATE", code)
        if create and current is not None:
            raise Conflict(f"区划 {code!r} 已存在", field="code", value=code, code="region_exists")
        if not create and current is None:
            raise NotFound(f"没有区划 {code!r}", field="code", value=code)
        level = body.get("level", current["level"] if current else None)
        if level not in LEVELS:
            raise ValidationError(f"区划级别 level 必须是 {'、'.join(LEVELS)} 之一，收到 {level!r}", field="level",
                                  value=level, code="invalid_choice")
        parent = body.get("parent_code", current["parent_code"] if current else None)
        if parent is not None:
            prow = await conn.fetchrow("SELECT level FROM regions WHERE code = $1", parent)
            if prow is None:
                raise ValidationError(f"未知的上级区划 {parent!r}", field="parent_code", value=parent,
                                      code="unknown_region")
            if LEVELS.index(prow["level"]) >= LEVELS.index(level):
                raise ValidationError(f"上级区划 {parent!r}（{prow['level']}）须高于 {level}", field="parent_code",
                                      value=parent, code="invalid_parent")
        check_code(code, level, parent)
        if create:
            await conn.execute(
                """INSERT INTO regions (code, name, level, parent_code, sort, updated_by)
                   VALUES ($1, $2, $3, $4, (SELECT coalesce(max(sort), 0) + 1 FROM regions), $5)""",
                code, name.strip(), level, parent, user_id)  # type: ignore[union-attr]
        else:
            await conn.execute(
                """UPDATE regions SET name = coalesce($2, name), level = $3, parent_code = $4,
                          active = coalesce($5, active), updated_by = $6, updated_at = now() WHERE code = $1""",
                code, name.strip() if isinstance(name, str) else None, level, parent, body.get("active"), user_id)
        return dict(await conn.fetchrow("SELECT code, name, level, parent_code, active FROM regions WHERE code = $1",
                                        code))


async def suggest_unit(conn: asyncpg.Connection, region_code: str | None, category_code: str | None) -> str | None:
    """The unit for a ticket of this region and category (active units only):
    1. a region x category rule (nearest region up the tree, then nearest category;
       a rule without a category covers all of the region);
    2. the dispatch catalogue's unit for the category (a department: 条);
    3. the unit bound to the nearest region (属地: 块)."""
    return await conn.fetchval(
        """WITH RECURSIVE rup(code, depth) AS (
               SELECT $1::text, 0 WHERE $1::text IS NOT NULL
               UNION ALL SELECT r.parent_code, rup.depth + 1 FROM regions r JOIN rup ON r.code = rup.code
                WHERE r.parent_code IS NOT NULL),
           cup(code, depth) AS (
               SELECT $2::text, 0 WHERE $2::text IS NOT NULL
               UNION ALL SELECT c.parent_code, cup.depth + 1 FROM ticket_categories c JOIN cup ON c.code = cup.code
                WHERE c.parent_code IS NOT NULL),
           candidates(unit_code, rank1, rank2, rank3) AS (
               SELECT d.unit_code, 0, rup.depth, coalesce(cup.depth, 1000)
                 FROM dispatch_region_rules d JOIN rup ON rup.code = d.region_code
                 LEFT JOIN cup ON cup.code = d.category_code
                WHERE d.category_code IS NULL OR cup.code IS NOT NULL
               UNION ALL
               SELECT d.unit_code, 1, 0, cup.depth FROM dispatch_catalogue d JOIN cup ON cup.code = d.category_code
               UNION ALL
               SELECT u.code, 2, rup.depth, 0 FROM units u JOIN rup ON rup.code = u.region_code)
           SELECT c.unit_code FROM candidates c JOIN units u ON u.code = c.unit_code AND u.active
            ORDER BY c.rank1, c.rank2, c.rank3, c.unit_code LIMIT 1""",
        region_code, category_code)


async def list_rules(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT d.id, d.region_code, r.name AS region_name, d.category_code, c.name AS category_name,
                  d.unit_code, u.name AS unit_name, d.note, d.updated_at
             FROM dispatch_region_rules d JOIN regions r ON r.code = d.region_code
             JOIN units u ON u.code = d.unit_code LEFT JOIN ticket_categories c ON c.code = d.category_code
            ORDER BY d.region_code, d.category_code NULLS FIRST""")
    return [dict(r) for r in rows]


async def set_rule(conn: asyncpg.Connection, body: dict[str, Any], *, user_id: int | None) -> dict[str, Any] | None:
    """Set (or with ``unit_code: null`` remove) the unit for region x category."""
    region = await check_region(conn, body.get("region_code"))
    if region is None:
        raise ValidationError("请填写区划代码 region_code", field="region_code", value=None, code="missing_field")
    category = body.get("category_code")
    if category is not None and not await conn.fetchval("SELECT true FROM ticket_categories WHERE code = $1",
                                                        category):
        raise ValidationError(f"未知的诉求分类 {category!r}", field="category_code", value=category,
                              code="unknown_category")
    unit = body.get("unit_code")
    if unit is None:
        await conn.execute("DELETE FROM dispatch_region_rules WHERE region_code = $1 "
                           "AND category_code IS NOT DISTINCT FROM $2", region, category)
        return None
    if not isinstance(unit, str) or not await conn.fetchval("SELECT active FROM units WHERE code = $1", unit):
        raise ValidationError(f"未知或已停用的单位 {unit!r}", field="unit_code", value=unit, code="unknown_unit")
    row = await conn.fetchrow(
        """INSERT INTO dispatch_region_rules (region_code, category_code, unit_code, note, updated_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (region_code, category_code) DO UPDATE SET unit_code = EXCLUDED.unit_code,
               note = EXCLUDED.note, updated_by = EXCLUDED.updated_by, updated_at = now()
           RETURNING id, region_code, category_code, unit_code, note""",
        region, category, unit, str(body.get("note") or "")[:500], user_id)
    return dict(row)


async def bind_unit(conn: asyncpg.Connection, unit_code: str, region_code: str | None) -> None:
    """Bind a unit to the region it answers for (None unbinds)."""
    await check_region(conn, region_code)
    result = await conn.execute("UPDATE units SET region_code = $2, updated_at = now() WHERE code = $1",
                                unit_code, region_code)
    if result.endswith(" 0"):
        raise NotFound(f"没有单位 {unit_code!r}", field="code", value=unit_code)
