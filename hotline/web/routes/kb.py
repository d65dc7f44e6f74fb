"""Knowledge base API: search and screen-pop suggestions for everyone signed in;
editing, review workflow, flags, review-due lists, synonyms, reviewers and imports
for editors (a unit's liaisons co-build their unit's articles; publishing needs a
reviewer: supervisor, admin or a unit's named knowledge administrator)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline.errors import PayloadTooLarge, ValidationError
from hotline.kb import access, articles, flags, lexicon_entries, reviewers
from hotline.kb.engine import SearchRequest, Visibility, get_kb
from hotline.kb.importer import import_as, read_path
from hotline.kb.lexicon import KINDS
from hotline.kb.model import MATERIAL_TYPES, REVISION_TRANSITIONS, STATES, TRANSITIONS
from hotline.kb.present import article_json
from hotline.kb.settings import KbSettings
from hotline.kb.suggest import suggest
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import param_bool
from hotline.web.util import json_response, param_int, read_json

TAGS = ["knowledge base"]
MAX_IMPORT_BYTES = 10 * 1024 * 1024
_STR = {"type": "string"}
_INT = {"type": "integer"}


def _flag(params: Mapping[str, str], name: str) -> bool | None:
    """A boolean parameter with one meaning everywhere (hotline.web.params), None when absent."""
    return param_bool(params, name) if params.get(name) else None


async def _visibility(request: web.Request) -> Visibility:
    scope = await access.editor_scope(request.app[RUNTIME].pool, current_user(request))
    return Visibility(all_states=True) if scope is None else Visibility(own_units=frozenset(scope))


async def _sync_local(request: web.Request) -> None:
    """Read-your-writes on this node; other nodes follow by notification."""
    kb = await get_kb(request.app[RUNTIME])
    await kb.sync()


def _article_id(request: web.Request) -> str:
    return request.match_info["id"]


@requires()
@api_doc(tags=TAGS, query={
    "q": {"type": "string", "description": "问题或关键词（≤500 字；引号、*、括号、AND 等按普通字符处理）"},
    "hotline": {"type": "string", "description": "只看某条热线的知识"},
    "category": {"type": "string", "description": "分类路径前缀，如 住房公积金/提取"},
    "unit": {"type": "string", "description": "发布单位代码"},
    "material_type": {"type": "string", "enum": list(MATERIAL_TYPES)},
    "state": {"type": "string", "enum": list(STATES), "description": "编辑可用"},
    "live": {"type": "boolean", "description": "编辑也只看已发布且在有效期内的"},
    "page": _INT, "per_page": _INT,
}, responses={200: "results with highlighted snippets; when nothing relevant was found: notice 没有找到相关知识, "
                 "hint, suggestions (nearest articles below the relevance floor), alternatives (what the caller "
                 "may have meant), popular (the line's most-read articles), categories (to browse)",
             400: "bad parameter or query too long"})
async def search(request: web.Request) -> web.Response:
    """Search the knowledge base (full text, synonyms, filters, highlights)."""
    return json_response(await _search(request, request.query))


@requires()
@api_doc(tags=TAGS, body={"type": "object", "properties": {
    "q": {"type": "string"}, "hotline": _STR, "category": _STR, "unit": _STR, "material_type": _STR,
    "state": _STR, "live": {"type": "boolean"}, "page": _INT, "per_page": _INT}},
    responses={200: "results with highlighted snippets", 400: "bad parameter or query too long"})
async def search_post(request: web.Request) -> web.Response:
    """Search with the parameters in a JSON body (long pasted text that does not fit a URL)."""
    body = await read_json(request)
    params = {k: ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in body.items()}
    return json_response(await _search(request, params))


async def _search(request: web.Request, params: Mapping[str, str]) -> dict[str, Any]:
    runtime = request.app[RUNTIME]
    settings = KbSettings.from_settings(runtime.settings)
    visibility = await _visibility(request)
    editor = visibility.all_states or bool(visibility.own_units)
    state = params.get("state") or None
    if state is not None and state not in STATES:
        raise ValidationError("state 必须是：" + "、".join(STATES), field="state", value=state)
    if state is not None and not editor:
        raise ValidationError("只有知识编辑可以按状态筛选", field="state")
    material_type = params.get("material_type") or None
    if material_type is not None and material_type not in MATERIAL_TYPES:
        raise ValidationError("material_type 必须是：" + "、".join(MATERIAL_TYPES), field="material_type")
    req = SearchRequest(
        text=params.get("q", ""), hotline=params.get("hotline") or None,
        category=params.get("category") or None, unit=params.get("unit") or None,
        material_type=material_type, state=state, live_only=_flag(params, "live"),
        page=param_int(params, "page", 1, low=1, high=1000),
        per_page=param_int(params, "per_page", 10, low=1, high=settings.max_page_size),
        visibility=visibility)
    kb = await get_kb(runtime)
    return await kb.search(req)


@requires()
@api_doc(tags=TAGS, query={"hotline": _STR, "text": {"type": "string", "description": "来电人的话"},
                           "limit": _INT}, responses={200: "suggested articles"})
async def suggest_(request: web.Request) -> web.Response:
    """Suggested articles for the screen-pop: a line plus the caller's words."""
    items = await suggest(request.app[RUNTIME], hotline_number=request.query.get("hotline") or None,
                          text=request.query.get("text"), limit=param_int(request.query, "limit", 5, low=1, high=20))
    return json_response({"items": items})


@requires()
@api_doc(tags=TAGS, query={"unit": _STR, "state": {"type": "string", "enum": list(STATES)}, "title": _STR,
                           "hotline": _STR, "page": _INT, "per_page": _INT})
async def list_articles(request: web.Request) -> web.Response:
    """List articles from the database (editors: every state; others: published)."""
    return json_response(await articles.list_articles(
        request.app[RUNTIME].pool, current_user(request), unit_code=request.query.get("unit") or None,
        state=request.query.get("state") or None, title=request.query.get("title") or None,
        hotline=request.query.get("hotline") or None, page=param_int(request.query, "page", 1, low=1, high=10_000),
        per_page=param_int(request.query, "per_page", 20, low=1, high=100)))


_CONTENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": _STR, "title": {"type": "string", "maxLength": 128}, "category": _STR, "unit_code": _STR,
        "material_type": {"type": "string", "enum": list(MATERIAL_TYPES)},
        "hotlines": {"type": "array", "items": _STR}, "keywords": {"type": "array", "items": _STR},
        "body": _STR, "valid_from": {"type": "string", "format": "date"},
        "valid_to": {"type": ["string", "null"], "format": "date"},
        "review_due": {"type": ["string", "null"], "format": "date"},
        "version": {"type": "integer", "description": "PATCH: the version you edited (409 if it changed)"},
    },
}


@requires()
@api_doc(tags=TAGS, body=_CONTENT_SCHEMA, responses={201: "the draft", 400: "invalid fields",
                                                     403: "not your unit", 409: "duplicate title or id"})
async def create_article(request: web.Request) -> web.Response:
    """Create a draft article (owner unit = unit_code; your own unit unless a reviewer)."""
    body = await read_json(request)
    row = await articles.create_article(request.app[RUNTIME].pool, current_user(request), body)
    await _sync_local(request)
    return json_response({"article": article_json(row)}, status=201)


@requires()
@api_doc(tags=TAGS, responses={200: "the article (editors also get its pending revision)", 404: "no such article"})
async def get_article(request: web.Request) -> web.Response:
    """One article (non-editors: only published ones; counts a view)."""
    item = await articles.read_article(request.app[RUNTIME].pool, current_user(request), _article_id(request))
    return json_response({"article": item})


@requires()
@api_doc(tags=TAGS, body=_CONTENT_SCHEMA, responses={200: "updated (published: a pending revision)",
                                                     409: "changed meanwhile, duplicate title, or expired/archived"})
async def update_article(request: web.Request) -> web.Response:
    """Edit an article of your unit (a published one gets a revision to review)."""
    body = await read_json(request)
    version = body.pop("version", None)
    if version is not None and not isinstance(version, int):
        raise ValidationError("version 必须是整数", field="version")
    body.pop("id", None)
    row = await articles.update_article(request.app[RUNTIME].pool, current_user(request), _article_id(request), body,
                                     expected_version=version)
    await _sync_local(request)
    return json_response({"article": article_json(row)})


@requires()
@api_doc(tags=TAGS, body={"type": "object", "required": ["action"], "properties": {
    "action": {"type": "string", "enum": sorted({*TRANSITIONS, *REVISION_TRANSITIONS})}, "note": _STR}},
    responses={200: "new state", 403: "needs an editor of the unit or a reviewer", 409: "not allowed from this state"})
async def transition(request: web.Request) -> web.Response:
    """Workflow: submit, publish, reject, expire, archive, restore (or discard a revision)."""
    body = await read_json(request)
    action = body.get("action")
    if not isinstance(action, str):
        raise ValidationError("action 必填", field="action")
    note = body.get("note")
    row = await articles.transition(request.app[RUNTIME].pool, current_user(request), _article_id(request), action,
                                 note=note if isinstance(note, str) else None)
    await _sync_local(request)
    return json_response({"article": article_json(row)})


@requires()
@api_doc(tags=TAGS, responses={200: "who changed what, with content snapshots"})
async def article_history(request: web.Request) -> web.Response:
    """An article's history: every action, who, when, which fields, the content."""
    items = await articles.article_history(request.app[RUNTIME].pool, current_user(request), _article_id(request))
    return json_response({"items": items})


@requires()
@api_doc(tags=TAGS, body={"type": "object", "required": ["reason"], "properties": {
    "reason": _STR, "call_id": {"type": ["integer", "null"]}}}, responses={201: "flag raised"})
async def raise_flag(request: web.Request) -> web.Response:
    """Flag an article as outdated or wrong (from a call); it lands with the owner unit."""
    body = await read_json(request)
    call_id = body.get("call_id")
    if call_id is not None and not isinstance(call_id, int):
        raise ValidationError("call_id 必须是整数", field="call_id")
    flag = await flags.raise_flag(request.app[RUNTIME].pool, current_user(request), _article_id(request),
                                  str(body.get("reason") or ""), call_id=call_id)
    return json_response({"flag": flag}, status=201)


@requires()
@api_doc(tags=TAGS, query={"unit": _STR, "state": {"type": "string", "enum": ["open", "resolved", "dismissed", "all"]}})
async def list_flags(request: web.Request) -> web.Response:
    """Flags on your unit's articles (reviewers: every unit)."""
    state = request.query.get("state", "open")
    if state not in ("open", "resolved", "dismissed", "all"):
        raise ValidationError("state 必须是 open、resolved、dismissed 或 all", field="state")
    items = await flags.list_flags(request.app[RUNTIME].pool, current_user(request),
                                   unit_code=request.query.get("unit") or None,
                                   state=None if state == "all" else state)
    return json_response({"items": items})


@requires()
@api_doc(tags=TAGS, body={"type": "object", "properties": {"resolution": _STR, "dismiss": {"type": "boolean"}}})
async def resolve_flag(request: web.Request) -> web.Response:
    """Close a flag (resolved, or dismissed when the article was right)."""
    try:
        flag_id = int(request.match_info["id"])
    except ValueError:
        raise ValidationError("标记编号必须是整数", field="id") from None
    body = await read_json(request)
    flag = await flags.resolve_flag(request.app[RUNTIME].pool, current_user(request), flag_id,
                                    resolution=str(body.get("resolution") or ""), dismiss=bool(body.get("dismiss")))
    return json_response({"flag": flag})


@requires()
@api_doc(tags=TAGS, query={"unit": _STR, "days": {"type": "integer", "description": "看未来多少天（默认 30）"}})
async def review_due(request: web.Request) -> web.Response:
    """What is due for review per unit: review date or validity end near, or flagged."""
    return json_response(await reviewers.review_due(
        request.app[RUNTIME].pool, current_user(request), unit_code=request.query.get("unit") or None,
        within_days=param_int(request.query, "days", 30, low=0, high=3650)))


@requires()
@api_doc(tags=TAGS, responses={200: "file groups (read-only here) and the published editable groups"})
async def get_synonyms(request: web.Request) -> web.Response:
    """Synonym groups: from config/kb_synonyms.yaml and the published console ones."""
    kb = await get_kb(request.app[RUNTIME])
    return json_response({"file_groups": [list(g) for g in kb.file_lexicon.groups],
                          "groups": await lexicon_entries.published_groups(request.app[RUNTIME].pool)})


@requires("supervisor", "admin")
@api_doc(tags=TAGS, body={"type": "object", "required": ["groups"], "properties": {
    "groups": {"type": "array", "items": {"type": "array", "items": _STR}}}})
async def put_synonyms(request: web.Request) -> web.Response:
    """Replace the published editable synonym groups (every node picks them up, no reindex)."""
    body = await read_json(request)
    groups = body.get("groups")
    if not isinstance(groups, list) or len(groups) > 1000:
        raise ValidationError("groups 必须是词组列表（最多 1000 组）", field="groups")
    runtime = request.app[RUNTIME]
    user = current_user(request)
    cleaned = await lexicon_entries.replace_synonyms(runtime.pool, user, groups, remote_addr=request.remote)
    await _sync_local(request)
    return json_response({"groups": cleaned})


_LEXICON_BODY = {"type": "object", "required": ["kind", "terms"], "properties": {
    "kind": {"type": "string", "enum": list(KINDS)},
    "terms": {"type": "array", "items": _STR, "description": "词典词/停用词：一个词；同义词组：2–20 个词；口语说法：说法（* 表示中间隔几个字）"},
    "means": {"type": "array", "items": _STR, "description": "口语说法：对应的规范用词"},
    "note": _STR}}


def _entry_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise ValidationError("词库条目编号必须是整数", field="id", value=request.match_info["id"]) from None


@requires()
@api_doc(tags=TAGS, query={"kind": {"type": "string", "enum": list(KINDS)},
                           "state": {"type": "string", "enum": list(lexicon_entries.STATES)}})
async def list_lexicon(request: web.Request) -> web.Response:
    """The console's lexicon entries (dictionary words, stop words, synonym groups, colloquial phrases)."""
    items = await lexicon_entries.list_entries(request.app[RUNTIME].pool, kind=request.query.get("kind") or None,
                                               state=request.query.get("state") or None)
    user = current_user(request)
    pool = request.app[RUNTIME].pool
    return json_response({"items": items, "can_edit": await access.is_editor(pool, user),
                          "can_review": await access.reviews_everything(pool, user)})


@requires()
@api_doc(tags=TAGS, body=_LEXICON_BODY, responses={201: "the draft entry", 403: "not a knowledge editor"})
async def create_lexicon(request: web.Request) -> web.Response:
    """Propose a lexicon entry (a draft; a reviewer publishes it)."""
    entry = await lexicon_entries.create_entry(request.app[RUNTIME].pool, current_user(request),
                                               await read_json(request))
    return json_response({"entry": entry}, status=201)


@requires()
@api_doc(tags=TAGS, body=_LEXICON_BODY, responses={200: "the edited draft", 409: "not a draft"})
async def update_lexicon(request: web.Request) -> web.Response:
    """Edit a draft lexicon entry."""
    entry = await lexicon_entries.update_entry(request.app[RUNTIME].pool, current_user(request),
                                               _entry_id(request), await read_json(request))
    return json_response({"entry": entry})


@requires()
@api_doc(tags=TAGS, body={"type": "object", "required": ["action"], "properties": {
    "action": {"type": "string", "enum": list(lexicon_entries.TRANSITIONS)}, "note": _STR}},
    responses={200: "new state", 403: "needs an editor or a reviewer of every unit", 409: "not allowed from this state"})
async def transition_lexicon(request: web.Request) -> web.Response:
    """Lexicon workflow: submit, publish, reject, archive (withdraw), restore."""
    body = await read_json(request)
    action = body.get("action")
    if not isinstance(action, str):
        raise ValidationError("action 必填", field="action")
    note = body.get("note")
    entry = await lexicon_entries.transition(request.app[RUNTIME].pool, current_user(request), _entry_id(request),
                                             action, note=note if isinstance(note, str) else None)
    await _sync_local(request)
    return json_response({"entry": entry})


@requires()
@api_doc(tags=TAGS, responses={200: "who did what to the entry"})
async def lexicon_history(request: web.Request) -> web.Response:
    """A lexicon entry's history."""
    return json_response({"items": await lexicon_entries.history(request.app[RUNTIME].pool, _entry_id(request))})


@requires("admin")
@api_doc(tags=TAGS)
async def list_reviewers(request: web.Request) -> web.Response:
    """Named knowledge administrators (reviewers) per unit."""
    return json_response({"items": await reviewers.list_reviewers(request.app[RUNTIME].pool)})


_REVIEWER_BODY = {"type": "object", "required": ["user_id"], "properties": {
    "user_id": _INT, "unit_code": {"type": ["string", "null"], "description": "空：所有单位"}}}


def _reviewer_body(body: dict[str, Any]) -> tuple[int, str | None]:
    user_id, unit = body.get("user_id"), body.get("unit_code")
    if not isinstance(user_id, int):
        raise ValidationError("user_id 必须是整数", field="user_id")
    if unit is not None and not isinstance(unit, str):
        raise ValidationError("unit_code 必须是单位代码或 null", field="unit_code")
    return user_id, unit


@requires("admin")
@api_doc(tags=TAGS, body=_REVIEWER_BODY, responses={201: "granted"})
async def grant_reviewer(request: web.Request) -> web.Response:
    """Name a user knowledge administrator (reviewer) of a unit (or of all units)."""
    user_id, unit = _reviewer_body(await read_json(request))
    runtime = request.app[RUNTIME]
    await reviewers.grant_reviewer(runtime.pool, current_user(request), user_id, unit, remote_addr=request.remote)
    return json_response({"user_id": user_id, "unit_code": unit}, status=201)


@requires("admin")
@api_doc(tags=TAGS, body=_REVIEWER_BODY)
async def revoke_reviewer(request: web.Request) -> web.Response:
    """Withdraw a knowledge administrator's review right."""
    user_id, unit = _reviewer_body(await read_json(request))
    runtime = request.app[RUNTIME]
    await reviewers.revoke_reviewer(runtime.pool, current_user(request), user_id, unit, remote_addr=request.remote)
    return json_response({"ok": True})


@requires()
@api_doc(tags=TAGS, query={"format": {"type": "string", "enum": ["csv", "xlsx", "md"]},
                           "partial": {"type": "boolean"}, "dry_run": {"type": "boolean"}},
         responses={200: "import report (every bad row by number and field)", 403: "not an editor"})
async def import_(request: web.Request) -> web.Response:
    """Import a CSV/XLSX/Markdown file sent as the request body (≤1,000 items)."""
    runtime = request.app[RUNTIME]
    user = current_user(request)
    if not await access.is_editor(runtime.pool, user):
        raise ValidationError("只有知识编辑可以导入", field="body") from None
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "xlsx", "md"):
        raise ValidationError("format 必须是 csv、xlsx 或 md", field="format")
    if request.content_length is not None and request.content_length > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"导入文件不能超过 {MAX_IMPORT_BYTES // 1024 // 1024} MB")
    raw = await request.content.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"导入文件不能超过 {MAX_IMPORT_BYTES // 1024 // 1024} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        await asyncio.to_thread(path.write_bytes, raw)
        items, problems = await asyncio.to_thread(read_path, path)
    # co-building: a unit's editors import their unit's articles, as drafts for review
    dry_run = bool(_flag(request.query, "dry_run"))
    report = await import_as(runtime.pool, user, items, problems, partial=bool(_flag(request.query, "partial")),
                             dry_run=dry_run, max_items=KbSettings.from_settings(runtime.settings).max_import_items,
                             remote_addr=request.remote)
    if report.written:
        await _sync_local(request)
    return json_response({"report": report.to_json()}, status=200 if report.written or dry_run else 400)


@requires("supervisor", "admin")
@api_doc(tags=TAGS)
async def status(request: web.Request) -> web.Response:
    """This node's index: cursor, change log, counts, rebuilds."""
    runtime = request.app[RUNTIME]
    kb = await get_kb(runtime)
    latest = await kb.latest()
    return json_response({"index_dir": str(kb.index.path), "cursor": str(kb.cursor), "latest": str(latest),
                          "behind": latest > kb.cursor, "rebuilds": kb.stats.rebuilds,
                          "last_rebuild_reason": kb.stats.last_rebuild_reason,
                          "dictionary": kb.segmenter.fingerprint if kb.segmenter else None,
                          "articles": await articles.count_by_state(runtime.pool)})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/kb/search", search)
    r.add_post("/api/v1/kb/search", search_post)
    r.add_get("/api/v1/kb/suggest", suggest_)
    r.add_get("/api/v1/kb/status", status)
    r.add_get("/api/v1/kb/articles", list_articles)
    r.add_post("/api/v1/kb/articles", create_article)
    r.add_get("/api/v1/kb/articles/{id}", get_article)
    r.add_patch("/api/v1/kb/articles/{id}", update_article)
    r.add_post("/api/v1/kb/articles/{id}/transition", transition)
    r.add_get("/api/v1/kb/articles/{id}/history", article_history)
    r.add_post("/api/v1/kb/articles/{id}/flags", raise_flag)
    r.add_get("/api/v1/kb/flags", list_flags)
    r.add_post("/api/v1/kb/flags/{id}/resolve", resolve_flag)
    r.add_get("/api/v1/kb/review-due", review_due)
    r.add_get("/api/v1/kb/synonyms", get_synonyms)
    r.add_put("/api/v1/kb/synonyms", put_synonyms)
    r.add_get("/api/v1/kb/lexicon", list_lexicon)
    r.add_post("/api/v1/kb/lexicon", create_lexicon)
    r.add_patch("/api/v1/kb/lexicon/{id}", update_lexicon)
    r.add_post("/api/v1/kb/lexicon/{id}/transition", transition_lexicon)
    r.add_get("/api/v1/kb/lexicon/{id}/history", lexicon_history)
    r.add_get("/api/v1/kb/reviewers", list_reviewers)
    r.add_post("/api/v1/kb/reviewers", grant_reviewer)
    r.add_delete("/api/v1/kb/reviewers", revoke_reviewer)
    r.add_post("/api/v1/kb/import", import_)
