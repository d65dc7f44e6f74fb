"""Articles in PostgreSQL (the source of truth): create, edit, the review workflow,
flags, reviewers, lists; every change is written to ``kb_article_history`` and, when
it touches what the index holds, appended to ``kb_changes`` and announced.

Functions take a pool or a connection; mutations run in one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeAlias

import asyncpg

from hotline.auth.model import User
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.events import publish
from hotline.kb.model import (
    CONTENT_FIELDS,
    ID_RE,
    REVISION_TRANSITIONS,
    STATE_NAMES_ZH,
    STATES,
    TRANSITIONS,
    FieldProblem,
    validate_content,
)

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
TOPIC = "kb.changed"
#: advisory lock serialising appends to kb_changes: sequence order == commit order
CHANGE_LOCK = 7_345_120_030
REVIEWER_ROLES = ("supervisor", "admin")
ARTICLE_COLUMNS = """id, title, category, unit_code, material_type, hotlines, keywords, body,
    valid_from, valid_to, review_due, state, version, revision, revision_state, revision_by,
    source, views, created_by, created_at, updated_by, updated_at, published_by, published_at"""


class InvalidArticle(ValidationError):
    code = "kb_invalid"

    def __init__(self, problems: list[FieldProblem]) -> None:
        first = problems[0]
        super().__init__("；".join(f"{p.field}: {p.message}" for p in problems), field=first.field,
                         problems=[p.to_json() for p in problems])


class IllegalTransition(Conflict):
    code = "kb_illegal_transition"


@contextlib.asynccontextmanager
async def transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def log_change(conn: asyncpg.Connection, kind: str, article_ids: list[str] | None = None) -> int:
    """Append to the change log (inside the caller's transaction) and announce it."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CHANGE_LOCK)
    if article_ids:
        seq = await conn.fetchval(
            """WITH ins AS (INSERT INTO kb_changes (kind, article_id)
                            SELECT $1, unnest($2::text[]) RETURNING seq)
               SELECT max(seq) FROM ins""", kind, article_ids)
    else:
        seq = await conn.fetchval("INSERT INTO kb_changes (kind) VALUES ($1) RETURNING seq", kind)
    await publish(conn, TOPIC, {"seq": seq, "kind": kind})
    return int(seq)


# --- reference data ---------------------------------------------------------------

async def units(db: Db) -> dict[str, str]:
    return {r["code"]: r["name"] for r in await db.fetch("SELECT code, name FROM units")}


async def hotline_numbers(db: Db) -> list[str]:
    return [r["number"] for r in await db.fetch("SELECT number FROM hotlines")]


# --- who may do what ------------------------------------------------------------------

async def reviewer_scope(db: Db, user: User) -> set[str] | None:
    """Units the user reviews: ``None`` means every unit; an empty set means none."""
    if user.has_role(*REVIEWER_ROLES):
        return None
    rows = await db.fetch("SELECT unit_code FROM kb_reviewers WHERE user_id = $1", user.id)
    if any(r["unit_code"] is None for r in rows):
        return None
    return {r["unit_code"] for r in rows}


async def is_reviewer(db: Db, user: User, unit_code: str) -> bool:
    scope = await reviewer_scope(db, user)
    return scope is None or unit_code in scope


async def editor_scope(db: Db, user: User) -> set[str] | None:
    """Units whose articles the user edits (co-building): ``None`` = every unit."""
    scope = await reviewer_scope(db, user)
    if scope is None:
        return None
    if user.has_role("liaison") and user.unit_code:
        scope = scope | {user.unit_code}
    return scope


async def can_edit(db: Db, user: User, unit_code: str) -> bool:
    scope = await editor_scope(db, user)
    return scope is None or unit_code in scope


async def is_editor(db: Db, user: User) -> bool:
    scope = await editor_scope(db, user)
    return scope is None or bool(scope)


async def _require_edit(db: Db, user: User, unit_code: str) -> None:
    if not await can_edit(db, user, unit_code):
        raise Forbidden(f"只能编辑本单位的知识（本条属于 {unit_code}）", field="unit_code", unit_code=unit_code)


# --- rows -----------------------------------------------------------------------------

def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def article_json(row: Mapping[str, Any], *, editor: bool = True) -> dict[str, Any]:
    item = {k: _iso(v) for k, v in dict(row).items()}
    item["state_zh"] = STATE_NAMES_ZH.get(item.get("state", ""), "")
    if not editor:
        for key in ("revision", "revision_state", "revision_by", "created_by", "updated_by", "published_by"):
            item.pop(key, None)
    return item


def _snapshot(content: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _iso(content[k]) for k in CONTENT_FIELDS if k in content}


def _from_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(snapshot)
    for key in ("valid_from", "valid_to", "review_due"):
        if isinstance(out.get(key), str):
            out[key] = dt.date.fromisoformat(out[key])
    return out


async def get_article(db: Db, article_id: str, *, for_update: bool = False) -> asyncpg.Record:
    row = await db.fetchrow(
        f"SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE id = $1"  # noqa: S608 (constant columns)
        + (" FOR UPDATE" if for_update else ""),
        article_id)
    if row is None:
        raise NotFound(f"知识 {article_id} 不存在", field="id")
    return row


async def _history(conn: asyncpg.Connection, article_id: str, version: int, action: str, *,
                   state_from: str | None, state_to: str | None, changed: list[str] | None = None,
                   snapshot: dict[str, Any] | None = None, note: str | None = None,
                   user: User | None = None, actor_name: str | None = None) -> None:
    await conn.execute(
        """INSERT INTO kb_article_history (article_id, version, action, state_from, state_to,
               changed_fields, snapshot, note, actor_id, actor_name)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        article_id, version, action, state_from, state_to, changed or [], snapshot, note,
        user.id if user else None, user.username if user else actor_name)


async def validate(db: Db, data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    clean, problems = validate_content(data, units=await units(db), hotlines=await hotline_numbers(db),
                                       partial=partial)
    if problems:
        raise InvalidArticle(problems)
    return clean


async def _check_title(conn: asyncpg.Connection, title: str, article_id: str | None) -> None:
    other = await conn.fetchval("SELECT id FROM kb_articles WHERE title = $1 AND id IS DISTINCT FROM $2",
                                title, article_id)
    if other is not None:
        raise Conflict(f"标题与知识 {other} 重复：{title}", field="title", duplicate_of=other)


async def _next_id(conn: asyncpg.Connection, unit_code: str) -> str:
    n = await conn.fetchval("SELECT count(*) + 1 FROM kb_articles WHERE unit_code = $1", unit_code)
    while True:
        candidate = f"kb-{unit_code}-{n:04d}"
        if not await conn.fetchval("SELECT 1 FROM kb_articles WHERE id = $1", candidate):
            return candidate
        n += 1


# --- create and edit -----------------------------------------------------------------

async def create_article(db: Db, user: User, data: Mapping[str, Any]) -> asyncpg.Record:
    """A new article in ``draft``, owned by its issuing unit (the user must edit that unit)."""
    content = await validate(db, data)
    article_id = data.get("id")
    if article_id is not None and (not isinstance(article_id, str) or not ID_RE.match(article_id)):
        raise ValidationError("编号只能包含字母、数字、-、_、.（最长 64）", field="id", value=article_id)
    await _require_edit(db, user, content["unit_code"])
    async with transaction(db) as conn:
        await _check_title(conn, content["title"], None)
        article_id = article_id or await _next_id(conn, content["unit_code"])
        if await conn.fetchval("SELECT 1 FROM kb_articles WHERE id = $1", article_id):
            raise Conflict(f"编号 {article_id} 已存在", field="id")
        await conn.execute(
            """INSERT INTO kb_articles (id, title, category, unit_code, material_type, hotlines, keywords,
                   body, valid_from, valid_to, review_due, state, created_by, updated_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, current_date), $10, $11, 'draft', $12, $12)""",
            article_id, content["title"], content["category"], content["unit_code"], content["material_type"],
            content["hotlines"], content["keywords"], content["body"], content["valid_from"],
            content["valid_to"], content["review_due"], user.id)
        await _history(conn, article_id, 1, "create", state_from=None, state_to="draft",
                       changed=list(CONTENT_FIELDS), snapshot=_snapshot(content), user=user)
        await log_change(conn, "article", [article_id])
        return await get_article(conn, article_id)


async def update_article(db: Db, user: User, article_id: str, data: Mapping[str, Any], *,
                         expected_version: int | None = None) -> asyncpg.Record:
    """Edit content. Drafts and articles in review change in place (new version); a
    published article gets a pending revision and its live text stays visible."""
    changes = await validate(db, data, partial=True)
    if not changes:
        raise ValidationError("没有可修改的字段", field="body")
    async with transaction(db) as conn:
        row = await get_article(conn, article_id, for_update=True)
        await _require_edit(conn, user, row["unit_code"])
        if "unit_code" in changes:
            await _require_edit(conn, user, changes["unit_code"])
        if expected_version is not None and expected_version != row["version"]:
            raise Conflict(f"知识已被他人修改（当前版本 {row['version']}），请刷新后再改", field="version",
                           version=row["version"])
        if row["state"] in ("expired", "archived"):
            raise IllegalTransition(f"{STATE_NAMES_ZH[row['state']]}的知识不能直接修改，请先恢复为草稿",
                                    field="state", state=row["state"])
        if "title" in changes:
            await _check_title(conn, changes["title"], article_id)
        if row["state"] == "published":
            base = _from_snapshot(row["revision"]) if row["revision"] else {k: row[k] for k in CONTENT_FIELDS}
            merged = {**base, **changes}
            changed = [k for k in CONTENT_FIELDS if merged.get(k) != row[k]]
            await conn.execute(
                """UPDATE kb_articles SET revision = $2, revision_state = 'draft', revision_by = $3,
                          updated_by = $3, updated_at = now() WHERE id = $1""",
                article_id, _snapshot(merged), user.id)
            await _history(conn, article_id, row["version"], "revise", state_from="published",
                           state_to="published", changed=changed, snapshot=_snapshot(merged), user=user)
            return await get_article(conn, article_id)
        changed = [k for k in CONTENT_FIELDS if k in changes and changes[k] != row[k]]
        if not changed:
            return row
        merged = {**{k: row[k] for k in CONTENT_FIELDS}, **changes}
        version = row["version"] + 1
        await conn.execute(
            """UPDATE kb_articles SET title = $2, category = $3, unit_code = $4, material_type = $5,
                      hotlines = $6, keywords = $7, body = $8, valid_from = $9, valid_to = $10,
                      review_due = $11, version = $12, updated_by = $13, updated_at = now()
                WHERE id = $1""",
            article_id, merged["title"], merged["category"], merged["unit_code"], merged["material_type"],
            merged["hotlines"], merged["keywords"], merged["body"], merged["valid_from"] or row["valid_from"],
            merged["valid_to"], merged["review_due"], version, user.id)
        await _history(conn, article_id, version, "edit", state_from=row["state"], state_to=row["state"],
                       changed=changed, snapshot=_snapshot(merged), user=user)
        await log_change(conn, "article", [article_id])
        return await get_article(conn, article_id)


# --- the review workflow --------------------------------------------------------------

async def transition(db: Db, user: User, article_id: str, action: str, *, note: str | None = None,
                     today: dt.date | None = None) -> asyncpg.Record:
    """Apply a workflow action (see :data:`TRANSITIONS`); on a published article with a
    pending revision, submit/publish/reject/discard act on the revision."""
    if action not in TRANSITIONS and action not in REVISION_TRANSITIONS:
        raise ValidationError("action 必须是：" + "、".join(sorted({*TRANSITIONS, *REVISION_TRANSITIONS})),
                              field="action", value=action)
    today = today or await db.fetchval("SELECT current_date")
    async with transaction(db) as conn:
        row = await get_article(conn, article_id, for_update=True)
        unit = row["unit_code"]
        on_revision = row["state"] == "published" and action in REVISION_TRANSITIONS and (
            row["revision_state"] is not None or action == "discard")
        rule = REVISION_TRANSITIONS[action] if on_revision else TRANSITIONS.get(action)
        current = row["revision_state"] if on_revision else row["state"]
        who = rule.who if rule is not None else REVISION_TRANSITIONS[action].who
        if who == "reviewer" and not await is_reviewer(conn, user, unit):
            raise Forbidden("发布、退回、过期和归档需要知识审核员（班长、管理员或本单位知识管理员）",
                            field="action", action=action)
        if who == "editor":
            await _require_edit(conn, user, unit)
        if rule is None or current not in rule.sources:
            raise IllegalTransition(
                f"当前状态（{STATE_NAMES_ZH.get(current or '', current or '无修订')}）不能执行“{action}”",
                field="action", state=row["state"], revision_state=row["revision_state"], action=action)
        if on_revision:
            return await _revision_step(conn, user, row, action, rule.target, note)
        target = rule.target
        if action == "publish" and row["valid_to"] is not None and row["valid_to"] < today:
            raise IllegalTransition(f"有效期已于 {row['valid_to']} 结束，不能发布；请先修改有效期",
                                    field="valid_to", valid_to=row["valid_to"].isoformat())
        await conn.execute(
            """UPDATE kb_articles SET state = $2, updated_by = $3, updated_at = now(),
                      published_by = CASE WHEN $2 = 'published' THEN $3 ELSE published_by END,
                      published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END,
                      revision = CASE WHEN $2 = 'published' THEN revision ELSE NULL END,
                      revision_state = CASE WHEN $2 = 'published' THEN revision_state ELSE NULL END
                WHERE id = $1""",
            article_id, target, user.id)
        await _history(conn, article_id, row["version"], action, state_from=row["state"], state_to=target,
                       note=note, user=user)
        await log_change(conn, "article", [article_id])
        return await get_article(conn, article_id)


async def _revision_step(conn: asyncpg.Connection, user: User, row: asyncpg.Record, action: str,
                         target: str, note: str | None) -> asyncpg.Record:
    article_id = row["id"]
    if action == "publish":
        content = _from_snapshot(row["revision"])
        await _check_title(conn, content["title"], article_id)
        version = row["version"] + 1
        await conn.execute(
            """UPDATE kb_articles SET title = $2, category = $3, unit_code = $4, material_type = $5,
                      hotlines = $6, keywords = $7, body = $8, valid_from = $9, valid_to = $10,
                      review_due = $11, version = $12, revision = NULL, revision_state = NULL,
                      revision_by = NULL, updated_by = $13, updated_at = now(), published_by = $13,
                      published_at = now()
                WHERE id = $1""",
            article_id, content["title"], content["category"], content["unit_code"], content["material_type"],
            content["hotlines"], content["keywords"], content["body"], content["valid_from"],
            content["valid_to"], content["review_due"], version, user.id)
        changed = [k for k in CONTENT_FIELDS if content.get(k) != row[k]]
        await _history(conn, article_id, version, "publish", state_from="published", state_to="published",
                       changed=changed, snapshot=row["revision"], note=note, user=user)
        await log_change(conn, "article", [article_id])
    elif target:
        await conn.execute("UPDATE kb_articles SET revision_state = $2, updated_by = $3, updated_at = now() "
                           "WHERE id = $1", article_id, target, user.id)
        await _history(conn, article_id, row["version"], f"revision_{action}", state_from=row["revision_state"],
                       state_to=target, note=note, user=user)
    else:  # discard
        await conn.execute("UPDATE kb_articles SET revision = NULL, revision_state = NULL, revision_by = NULL, "
                           "updated_by = $2, updated_at = now() WHERE id = $1", article_id, user.id)
        await _history(conn, article_id, row["version"], "revision_discard", state_from=row["revision_state"],
                       state_to=None, note=note, user=user)
    return await get_article(conn, article_id)


async def expire_past_validity(db: Db, *, today: dt.date | None = None) -> list[str]:
    """Published articles whose validity ended become ``expired`` (periodic job)."""
    today = today or await db.fetchval("SELECT current_date")
    async with transaction(db) as conn:
        rows = await conn.fetch(
            """UPDATE kb_articles SET state = 'expired', updated_at = now()
                WHERE state = 'published' AND valid_to IS NOT NULL AND valid_to < $1
                RETURNING id, version""", today)
        for r in rows:
            await _history(conn, r["id"], r["version"], "expire", state_from="published", state_to="expired",
                           note="有效期届满，系统自动设为过期", actor_name="system")
        if rows:
            await log_change(conn, "article", [r["id"] for r in rows])
    return [r["id"] for r in rows]


# --- flags ------------------------------------------------------------------------------

async def raise_flag(db: Db, user: User, article_id: str, reason: str, *, call_id: int | None = None) -> dict[str, Any]:
    """An agent marks an article as outdated/wrong from a call; it lands with the owner unit."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("请说明哪里过时或有误", field="reason")
    if len(reason) > 2000:
        raise ValidationError("说明不能超过 2000 字", field="reason")
    async with transaction(db) as conn:
        row = await get_article(conn, article_id)
        if call_id is not None and not await conn.fetchval("SELECT 1 FROM calls WHERE id = $1", call_id):
            raise ValidationError(f"通话 {call_id} 不存在", field="call_id", value=call_id)
        flag = await conn.fetchrow(
            """INSERT INTO kb_flags (article_id, unit_code, call_id, reason, raised_by)
               VALUES ($1, $2, $3, $4, $5) RETURNING *""",
            article_id, row["unit_code"], call_id, reason, user.id)
        await _history(conn, article_id, row["version"], "flag", state_from=row["state"], state_to=row["state"],
                       note=reason, user=user)
        await publish(conn, "kb.flagged", {"flag_id": flag["id"], "article_id": article_id,
                                           "unit_code": row["unit_code"]})
        return {k: _iso(v) for k, v in dict(flag).items()}


async def resolve_flag(db: Db, user: User, flag_id: int, *, resolution: str, dismiss: bool = False) -> dict[str, Any]:
    async with transaction(db) as conn:
        flag = await conn.fetchrow("SELECT * FROM kb_flags WHERE id = $1 FOR UPDATE", flag_id)
        if flag is None:
            raise NotFound(f"标记 {flag_id} 不存在", field="id")
        await _require_edit(conn, user, flag["unit_code"])
        if flag["state"] != "open":
            raise Conflict("该标记已处理", field="state", state=flag["state"])
        row = await conn.fetchrow(
            """UPDATE kb_flags SET state = $2, resolved_by = $3, resolved_at = now(), resolution = $4
                WHERE id = $1 RETURNING *""",
            flag_id, "dismissed" if dismiss else "resolved", user.id, (resolution or "").strip() or None)
        return {k: _iso(v) for k, v in dict(row).items()}


async def list_flags(db: Db, user: User, *, unit_code: str | None = None, state: str | None = "open",
                     limit: int = 100) -> list[dict[str, Any]]:
    scope = await editor_scope(db, user)
    if scope is not None and unit_code is not None and unit_code not in scope:
        raise Forbidden("只能查看本单位的标记", field="unit")
    units_filter = None if scope is None else sorted(scope)
    rows = await db.fetch(
        """SELECT f.*, a.title, u.username AS raised_by_name
             FROM kb_flags f JOIN kb_articles a ON a.id = f.article_id
             LEFT JOIN users u ON u.id = f.raised_by
            WHERE ($1::text IS NULL OR f.unit_code = $1)
              AND ($2::text[] IS NULL OR f.unit_code = ANY($2))
              AND ($3::text IS NULL OR f.state = $3)
            ORDER BY f.raised_at DESC LIMIT $4""",
        unit_code, units_filter, state, limit)
    return [{k: _iso(v) for k, v in dict(r).items()} for r in rows]


# --- lists ------------------------------------------------------------------------------

async def list_articles(db: Db, user: User, *, unit_code: str | None = None, state: str | None = None,
                        title: str | None = None, hotline: str | None = None, page: int = 1,
                        per_page: int = 20) -> dict[str, Any]:
    """Editors' list straight from PostgreSQL; non-editors see published articles only."""
    if state is not None and state not in STATES:
        raise ValidationError("state 必须是：" + "、".join(STATES), field="state", value=state)
    editor = await is_editor(db, user)
    if not editor and state not in (None, "published"):
        raise Forbidden("只有知识编辑可以查看未发布的知识", field="state")
    states = [state] if state else (list(STATES) if editor else ["published"])
    pattern = None if not title else "%" + title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    where = """state = ANY($1) AND ($2::text IS NULL OR unit_code = $2) AND ($3::text IS NULL OR title ILIKE $3)
               AND ($4::text IS NULL OR $4 = ANY(hotlines))"""
    # ``where`` is a constant; every value is a parameter
    total = await db.fetchval(f"SELECT count(*) FROM kb_articles WHERE {where}",  # noqa: S608
                              states, unit_code, pattern, hotline)
    rows = await db.fetch(
        f"""SELECT id, title, category, unit_code, material_type, hotlines, state, version, revision_state,
                   valid_from, valid_to, review_due, updated_at
              FROM kb_articles WHERE {where} ORDER BY updated_at DESC, id LIMIT $5 OFFSET $6""",  # noqa: S608
        states, unit_code, pattern, hotline, per_page, (page - 1) * per_page)
    return {"items": [article_json(r) for r in rows], "total": total, "page": page, "per_page": per_page}


async def review_due(db: Db, user: User, *, unit_code: str | None = None, within_days: int = 30,
                     today: dt.date | None = None) -> dict[str, Any]:
    """Articles due for review (review date or end of validity within ``within_days``),
    and open flags, grouped per owner unit — the knowledge administrator's worklist."""
    today = today or await db.fetchval("SELECT current_date")
    scope = await editor_scope(db, user)
    if scope is not None and not scope:
        raise Forbidden("只有知识编辑可以查看复核清单")
    if scope is not None and unit_code is not None and unit_code not in scope:
        raise Forbidden("只能查看本单位的复核清单", field="unit")
    units_filter = None if scope is None else sorted(scope)
    limit_day = today + dt.timedelta(days=within_days)
    rows = await db.fetch(
        """SELECT a.id, a.title, a.unit_code, a.state, a.review_due, a.valid_to, a.version,
                  (SELECT count(*) FROM kb_flags f WHERE f.article_id = a.id AND f.state = 'open') AS open_flags
             FROM kb_articles a
            WHERE a.state IN ('published', 'expired')
              AND ($1::text IS NULL OR a.unit_code = $1) AND ($2::text[] IS NULL OR a.unit_code = ANY($2))
              AND (a.review_due <= $3 OR a.valid_to <= $3
                   OR EXISTS (SELECT 1 FROM kb_flags f WHERE f.article_id = a.id AND f.state = 'open'))
            ORDER BY a.unit_code, least(a.review_due, a.valid_to) NULLS LAST, a.id""",
        unit_code, units_filter, limit_day)
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        item = {k: _iso(v) for k, v in dict(r).items()}
        reasons = []
        if r["review_due"] is not None and r["review_due"] <= limit_day:
            reasons.append("overdue_review" if r["review_due"] < today else "review_due")
        if r["valid_to"] is not None and r["valid_to"] <= limit_day:
            reasons.append("expired" if r["valid_to"] < today else "validity_ending")
        if r["open_flags"]:
            reasons.append("flagged")
        item["reasons"] = reasons
        by_unit.setdefault(r["unit_code"], []).append(item)
    return {"today": today.isoformat(), "within_days": within_days,
            "units": [{"unit_code": u, "items": items, "count": len(items)} for u, items in by_unit.items()]}


async def history(db: Db, article_id: str) -> list[dict[str, Any]]:
    await get_article(db, article_id)
    rows = await db.fetch(
        """SELECT id, version, action, state_from, state_to, changed_fields, snapshot, note, actor_id,
                  actor_name, at FROM kb_article_history WHERE article_id = $1 ORDER BY id""", article_id)
    return [{k: _iso(v) for k, v in dict(r).items()} for r in rows]


# --- reviewers and synonyms -----------------------------------------------------------

async def list_reviewers(db: Db) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT r.user_id, u.username, u.display_name, r.unit_code, r.granted_at
             FROM kb_reviewers r JOIN users u ON u.id = r.user_id ORDER BY u.username, r.unit_code""")
    return [{k: _iso(v) for k, v in dict(r).items()} for r in rows]


async def grant_reviewer(db: Db, admin: User, user_id: int, unit_code: str | None) -> None:
    if not await db.fetchval("SELECT 1 FROM users WHERE id = $1", user_id):
        raise NotFound(f"用户 {user_id} 不存在", field="user_id")
    if unit_code is not None and not await db.fetchval("SELECT 1 FROM units WHERE code = $1", unit_code):
        raise ValidationError(f"单位 {unit_code} 不存在", field="unit_code")
    await db.execute(
        """INSERT INTO kb_reviewers (user_id, unit_code, granted_by) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""", user_id, unit_code, admin.id)


async def revoke_reviewer(db: Db, user_id: int, unit_code: str | None) -> bool:
    result = await db.execute(
        "DELETE FROM kb_reviewers WHERE user_id = $1 AND unit_code IS NOT DISTINCT FROM $2", user_id, unit_code)
    return bool(result.endswith(" 1"))


async def replace_synonyms(db: Db, user: User, groups: list[list[str]]) -> None:
    async with transaction(db) as conn:
        await conn.execute("DELETE FROM kb_synonyms")
        for terms in groups:
            await conn.execute("INSERT INTO kb_synonyms (terms, updated_by) VALUES ($1, $2)", terms, user.id)
        await log_change(conn, "synonyms")
