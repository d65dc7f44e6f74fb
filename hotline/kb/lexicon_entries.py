"""The lexicon entries knowledge editors keep from the console (``kb_lexicon``):
dictionary words, stop words, synonym groups and colloquial phrases, reviewed like
articles. An editor writes a draft and submits it; a reviewer of every unit publishes
or rejects it, and archives a published one to withdraw it. Publishing and
withdrawing go to the shared change log, so every node reloads its lexicon (and
rebuilds its index when the dictionary changed).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from hotline.auth.audit import audit
from hotline.auth.model import User
from hotline.errors import Conflict, Forbidden, NotFound, ValidationError
from hotline.kb.access import is_editor, reviews_everything
from hotline.kb.changes import record_lexicon
from hotline.kb.db import Db, savepoint
from hotline.kb.lexicon import KIND_NAMES_ZH, KINDS, clean_entry, clean_group
from hotline.kb.model import STATE_NAMES_ZH, Transition
from hotline.kb.present import row_json

STATES = ("draft", "review", "published", "archived")
#: the entries' lifecycle (the articles' table without expiry and revisions)
TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(frozenset({"draft"}), "review", "editor", "提交审核"),
    "publish": Transition(frozenset({"review"}), "published", "reviewer", "审核发布"),
    "reject": Transition(frozenset({"review"}), "draft", "reviewer", "退回修改"),
    "archive": Transition(frozenset({"draft", "review", "published"}), "archived", "reviewer", "停用"),
    "restore": Transition(frozenset({"archived"}), "draft", "editor", "恢复为草稿"),
}
COLUMNS = """id, kind, terms, means, note, state, version, created_by, created_at, updated_by, updated_at,
    published_by, published_at"""


class IllegalLexiconTransition(Conflict):
    code = "kb_lexicon_illegal_transition"


def entry_json(row: asyncpg.Record) -> dict[str, Any]:
    item = row_json(row)
    item["kind_zh"] = KIND_NAMES_ZH.get(item["kind"], "")
    item["state_zh"] = STATE_NAMES_ZH.get(item["state"], "停用" if item["state"] == "archived" else "")
    return item


async def _require_editor(db: Db, user: User) -> None:
    if not await is_editor(db, user):
        raise Forbidden("只有知识编辑可以维护词库", field="kind")


async def get_entry(db: Db, entry_id: int, *, for_update: bool = False) -> asyncpg.Record:
    row = await db.fetchrow(f"SELECT {COLUMNS} FROM kb_lexicon WHERE id = $1"  # noqa: S608 (constant)
                            + (" FOR UPDATE" if for_update else ""), entry_id)
    if row is None:
        raise NotFound(f"词库条目 {entry_id} 不存在", field="id")
    return row


async def _history(conn: asyncpg.Connection, row: asyncpg.Record, action: str, state_from: str | None,
                   user: User, note: str | None = None) -> None:
    await conn.execute(
        """INSERT INTO kb_lexicon_history (entry_id, action, state_from, state_to, snapshot, note, actor_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        row["id"], action, state_from, row["state"],
        {"kind": row["kind"], "terms": list(row["terms"]), "means": list(row["means"])}, note, user.id)


async def list_entries(db: Db, *, kind: str | None = None, state: str | None = None,
                       limit: int = 500) -> list[dict[str, Any]]:
    if kind is not None and kind not in KINDS:
        raise ValidationError("kind 必须是：" + "、".join(KINDS), field="kind", value=kind)
    if state is not None and state not in STATES:
        raise ValidationError("state 必须是：" + "、".join(STATES), field="state", value=state)
    rows = await db.fetch(
        f"""SELECT {COLUMNS} FROM kb_lexicon
             WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR state = $2)
             ORDER BY (state = 'review') DESC, updated_at DESC, id DESC LIMIT $3""",  # noqa: S608 (constant)
        kind, state, limit)
    return [entry_json(r) for r in rows]


async def create_entry(db: Db, user: User, data: dict[str, Any]) -> dict[str, Any]:
    """A new draft entry (any knowledge editor)."""
    kind, terms, means = clean_entry(data.get("kind"), data.get("terms"), data.get("means"))
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise ValidationError("备注是不超过 500 字的文字", field="note", value=note)
    await _require_editor(db, user)
    async with savepoint(db) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO kb_lexicon (kind, terms, means, note, created_by, updated_by)
                VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}""",  # noqa: S608 (constant)
            kind, terms, means, note, user.id)
        await _history(conn, row, "create", None, user)
        return entry_json(row)


async def update_entry(db: Db, user: User, entry_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Edit a draft (a published entry is archived and written anew)."""
    await _require_editor(db, user)
    async with savepoint(db) as conn:
        row = await get_entry(conn, entry_id, for_update=True)
        if row["state"] != "draft":
            raise IllegalLexiconTransition("只有草稿可以修改", field="state", state=row["state"])
        kind, terms, means = clean_entry(data.get("kind", row["kind"]), data.get("terms", list(row["terms"])),
                                         data.get("means", list(row["means"])))
        row = await conn.fetchrow(
            f"""UPDATE kb_lexicon SET kind = $2, terms = $3, means = $4, version = version + 1,
                       updated_by = $5, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}""",  # noqa: S608
            entry_id, kind, terms, means, user.id)
        await _history(conn, row, "edit", "draft", user)
        return entry_json(row)


async def transition(db: Db, user: User, entry_id: int, action: str, *, note: str | None = None) -> dict[str, Any]:
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise ValidationError("action 必须是：" + "、".join(TRANSITIONS), field="action", value=action)
    async with savepoint(db) as conn:
        row = await get_entry(conn, entry_id, for_update=True)
        if rule.who == "reviewer" and not await reviews_everything(conn, user):
            raise Forbidden("词库的发布、退回和停用需要全部单位的知识审核员（班长或管理员）", field="action",
                            action=action)
        if rule.who == "editor":
            await _require_editor(conn, user)
        if row["state"] not in rule.sources:
            raise IllegalLexiconTransition(
                f"当前状态（{STATE_NAMES_ZH.get(row['state'], row['state'])}）不能执行“{rule.zh}”",
                field="action", state=row["state"], action=action)
        was = row["state"]
        row = await conn.fetchrow(
            f"""UPDATE kb_lexicon SET state = $2, updated_by = $3, updated_at = now(),
                       published_by = CASE WHEN $2 = 'published' THEN $3 ELSE published_by END,
                       published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END
                 WHERE id = $1 RETURNING {COLUMNS}""",  # noqa: S608 (constant)
            entry_id, rule.target, user.id)
        await _history(conn, row, action, was, user, note)
        if "published" in (was, rule.target):
            await record_lexicon(conn, [entry_id], kinds=[row["kind"]])
        return entry_json(row)


async def history(db: Db, entry_id: int) -> list[dict[str, Any]]:
    await get_entry(db, entry_id)
    rows = await db.fetch(
        """SELECT h.id, h.action, h.state_from, h.state_to, h.snapshot, h.note, h.actor_id, u.username AS actor,
                  h.at FROM kb_lexicon_history h LEFT JOIN users u ON u.id = h.actor_id
            WHERE h.entry_id = $1 ORDER BY h.id""", entry_id)
    return [row_json(r) for r in rows]


# --- the synonym groups of the older API ----------------------------------------------------

async def published_groups(db: Db) -> list[list[str]]:
    rows = await db.fetch("SELECT terms FROM kb_lexicon WHERE kind = 'synonym' AND state = 'published' ORDER BY id")
    return [list(r["terms"]) for r in rows]


async def replace_synonyms(db: Db, user: User, groups: list[list[str]], *,
                           remote_addr: str | None = None) -> list[list[str]]:
    """``PUT /api/v1/kb/synonyms`` (reviewers of every unit): the published synonym
    groups become exactly ``groups`` (others archived, new ones published at once)."""
    if not await reviews_everything(db, user):
        raise Forbidden("替换同义词组需要全部单位的知识审核员（班长或管理员）", field="groups")
    cleaned = [clean_group(g, where=f"groups[{i}]") for i, g in enumerate(groups)]
    async with savepoint(db) as conn:
        current = await conn.fetch(
            "SELECT id, terms FROM kb_lexicon WHERE kind = 'synonym' AND state = 'published' FOR UPDATE")
        keep = {tuple(g) for g in cleaned}
        have = {tuple(r["terms"]): r["id"] for r in current}
        changed: list[int] = []
        for old_terms, entry_id in have.items():
            if old_terms not in keep:
                row = await conn.fetchrow(
                    f"""UPDATE kb_lexicon SET state = 'archived', updated_by = $2, updated_at = now()
                         WHERE id = $1 RETURNING {COLUMNS}""", entry_id, user.id)  # noqa: S608 (constant)
                await _history(conn, row, "archive", "published", user, "替换同义词组")
                changed.append(entry_id)
        for terms in cleaned:
            if tuple(terms) in have:
                continue
            row = await conn.fetchrow(
                f"""INSERT INTO kb_lexicon (kind, terms, state, created_by, updated_by, published_by, published_at)
                    VALUES ('synonym', $1, 'published', $2, $2, $2, now()) RETURNING {COLUMNS}""",  # noqa: S608
                terms, user.id)
            await _history(conn, row, "publish", None, user, "替换同义词组")
            changed.append(row["id"])
        await record_lexicon(conn, changed, kinds=["synonym"])
        await audit(conn, "kb_synonyms_replaced", user=user, object_type="kb_synonyms",
                    detail={"groups": len(cleaned)}, remote_addr=remote_addr)
    return cleaned
