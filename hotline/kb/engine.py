"""The node's knowledge-base engine: keeps the derived index in step with PostgreSQL
and answers searches.

* At open, the index is checked against the database (instance, schema version,
  cursor not ahead of the log, same set of articles) and rebuilt or caught up.
* ``kb.changed`` notifications wake one sync task; a sync reads ``kb_changes``
  after the index's cursor, so a node that missed notifications (down, or its
  LISTEN connection dropped) catches up from the log. One writer per node (an
  asyncio lock) plus whoosh's file lock serialise index writes.
* Searches run in worker threads with per-thread searchers.

``await get_kb(runtime)`` returns the engine of a runtime (opened on first use).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from whoosh.query import And, NumericRange, Or, Query, Term

from hotline.errors import Unavailable, ValidationError
from hotline.kb import store
from hotline.kb.index import Hit, KbIndex, day_number, document
from hotline.kb.settings import KbSettings, index_dir, synonyms_path
from hotline.kb.synonyms import Synonyms, load_db, load_file
from hotline.kb.text import fold, query_terms, setup_jieba, snippet
from hotline.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 2000


class QueryTooLong(ValidationError):
    code = "kb_query_too_long"


@dataclass(slots=True)
class Visibility:
    """What a searcher may see: ``all_states`` (reviewers) or published-and-valid plus
    every state of ``own_units`` (a liaison's own unit)."""

    all_states: bool = False
    own_units: frozenset[str] = frozenset()


@dataclass(slots=True)
class SearchRequest:
    text: str = ""
    hotline: str | None = None
    category: str | None = None
    unit: str | None = None
    material_type: str | None = None
    state: str | None = None
    #: only published, currently valid articles; ``None``: the default for the visibility
    #: (agents: always; editors: no — they see every state)
    live_only: bool | None = None
    page: int = 1
    per_page: int = 10
    visibility: Visibility = field(default_factory=Visibility)
    #: the day validity is judged on (default: today in the configured time zone)
    today: dt.date | None = None


@dataclass(slots=True)
class EngineStats:
    rebuilds: int = 0
    applied: int = 0
    syncs: int = 0
    last_rebuild_reason: str = ""
    last_sync_at: float = 0.0


class KnowledgeBase:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = KbSettings.from_settings(runtime.settings)
        self.index = KbIndex(index_dir(runtime.settings))
        self.cursor = 0
        self.instance = ""
        self.synonyms = Synonyms()
        self.stats = EngineStats()
        self.opened = False
        self.closed = False
        self._file_groups: list[list[str]] = []
        self._write_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._sync_task: asyncio.Task[None] | None = None
        self._dirty = False
        self._unsubscribe: Any = None

    # -- lifecycle ----------------------------------------------------------------------
    async def open(self, *, listen: bool = True) -> None:
        async with self._open_lock:
            if self.opened:
                return
            self._file_groups = load_file(synonyms_path(self.runtime.settings))
            db_groups = await load_db(self.runtime.pool)
            await asyncio.to_thread(setup_jieba, self.runtime.settings.data_dir / "cache")
            self.synonyms = Synonyms([*self._file_groups, *db_groups])
            self.instance = await self.runtime.pool.fetchval(
                "SELECT (SELECT value FROM kb_meta WHERE key = 'instance') || ':' || current_database()")
            if listen:
                # subscribe before checking, so nothing committed meanwhile is missed
                listener = await self.runtime.events()
                self._unsubscribe = listener.subscribe(store.TOPIC, self._on_event)
                listener.on_reconnect.append(self.kick)
            await self.check()
            self.opened = True

    async def check(self) -> str:
        """Compare the index with the database; rebuild or catch up. Returns what was done."""
        meta = await asyncio.to_thread(self.index.open)
        latest = await self.latest_seq()
        reason = ""
        if meta is None:
            reason = "missing or unreadable index, or another schema version"
        elif meta.instance != self.instance:
            reason = "index belongs to another database"
        elif meta.cursor > latest:
            reason = f"index cursor {meta.cursor} is ahead of the database ({latest}): restored database?"
        if reason:
            await self.rebuild(reason)
            return f"rebuilt: {reason}"
        assert meta is not None
        self.cursor = meta.cursor
        applied = await self.sync()
        db_ids = {r["id"] for r in await self.runtime.pool.fetch("SELECT id FROM kb_articles")}
        if db_ids != await asyncio.to_thread(self.index.ids):
            await self.rebuild("index and database hold different articles")
            return "rebuilt: index and database held different articles"
        return f"caught up: {applied} change(s) applied from cursor {meta.cursor}"

    async def close(self) -> None:
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            listener = self.runtime._listener
            if listener is not None and self.kick in listener.on_reconnect:
                listener.on_reconnect.remove(self.kick)
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sync_task
        async with self._write_lock:
            self.index.close()

    # -- keeping up -----------------------------------------------------------------------
    async def latest_seq(self) -> int:
        return int(await self.runtime.pool.fetchval("SELECT coalesce(max(seq), 0) FROM kb_changes"))

    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
        seq = payload.get("seq")
        if isinstance(seq, int) and seq <= self.cursor:
            return
        self.kick()

    def kick(self) -> None:
        """Start a sync in the background (or ask the running one to go round again)."""
        if self.closed:
            return
        if self._sync_task is not None and not self._sync_task.done():
            self._dirty = True
            return
        self._sync_task = asyncio.ensure_future(self._background_sync())

    async def _background_sync(self) -> None:
        while True:
            self._dirty = False
            try:
                await self.sync()
            except Exception:
                log.exception("knowledge-base index sync failed; the next change or poll retries")
                return
            if not self._dirty or self.closed:
                return

    async def sync(self) -> int:
        """Apply every change after the cursor. Returns the number of articles written."""
        applied = 0
        async with self._write_lock:
            if not self.index.is_open:
                return 0
            while True:
                changes = await self.runtime.pool.fetch(
                    "SELECT seq, kind, article_id FROM kb_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                    self.cursor, BATCH)
                if not changes:
                    break
                ids = list(dict.fromkeys(c["article_id"] for c in changes if c["article_id"]))
                rows = await self.runtime.pool.fetch(
                    f"SELECT {store.ARTICLE_COLUMNS} FROM kb_articles WHERE id = ANY($1)",  # noqa: S608 (constant)
                    ids) if ids else []
                docs = [document(r) for r in rows]
                deletes = sorted(set(ids) - {r["id"] for r in rows})
                cursor = int(changes[-1]["seq"])
                await asyncio.to_thread(self.index.write, docs, deletes, cursor=cursor, instance=self.instance)
                self.cursor = cursor
                applied += len(docs) + len(deletes)
                if any(c["kind"] == "synonyms" for c in changes):
                    await self._reload_synonyms()
            self.stats.syncs += 1
            self.stats.applied += applied
            self.stats.last_sync_at = time.monotonic()
        return applied

    async def rebuild(self, reason: str = "requested", *, procs: int = 1) -> int:
        """Rebuild the whole index from one consistent snapshot of the database."""
        async with self._write_lock:
            if not self.index.is_open:
                await asyncio.to_thread(self.index.open)
            async with self.runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                             readonly=True):
                cursor = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM kb_changes"))
                rows = await conn.fetch(f"SELECT {store.ARTICLE_COLUMNS} FROM kb_articles")  # noqa: S608
            docs = [document(r) for r in rows]
            count = await asyncio.to_thread(self.index.write, docs, (), cursor=cursor, instance=self.instance,
                                            clear=True, procs=procs)
            self.cursor = cursor
            self.stats.rebuilds += 1
            self.stats.last_rebuild_reason = reason
            log.info("knowledge-base index rebuilt (%s): %d articles, cursor %d", reason, count, cursor)
        await self._reload_synonyms()
        await self.sync()
        return count

    async def _reload_synonyms(self) -> None:
        db_groups = await load_db(self.runtime.pool)
        self.synonyms = Synonyms([*self._file_groups, *db_groups])

    def stale(self) -> bool:
        return time.monotonic() - self.stats.last_sync_at > self.settings.poll_seconds

    # -- searching ------------------------------------------------------------------------
    def parse(self, text: str, *, limit_chars: int | None = None) -> tuple[list[list[str]], list[str]]:
        """The words to look for in a person's text (never parsed as query syntax:
        quotes, ``*``, brackets and AND are just characters), expanded with synonyms.
        Returns the alternatives, each cut into index words (empty when no meaningful
        word is left), and the terms to highlight."""
        text = unicodedata.normalize("NFKC", text or "")
        if limit_chars is not None:
            text = text[:limit_chars]
        folded = fold(text).strip()
        terms = query_terms(folded)[:32]
        alternatives: list[str] = []
        for term in terms:
            alternatives.extend(sorted(self.synonyms.expand(term)))
        for group in self.synonyms.phrases_in(folded):
            alternatives.extend(sorted(group))
        alternatives = list(dict.fromkeys(alternatives))
        return [query_terms(alt) or [alt] for alt in alternatives], alternatives

    @staticmethod
    def _filter(req: SearchRequest) -> Query | None:
        today = day_number(req.today or dt.date.today())
        live = And([Term("state", "published"), NumericRange("valid_from", None, today),
                     NumericRange("valid_to", today, None)])
        parts: list[Query] = []
        vis = req.visibility
        editor = vis.all_states or bool(vis.own_units)
        if req.live_only or not editor:
            parts.append(live)
        elif not vis.all_states:
            parts.append(Or([live, *[Term("unit", u) for u in sorted(vis.own_units)]]))
        if req.state:
            parts.append(Term("state", req.state))
        if req.hotline:
            parts.append(Term("hotlines", req.hotline))
        if req.category:
            parts.append(Term("category_path", "/".join(p.strip() for p in req.category.split("/") if p.strip())))
        if req.unit:
            parts.append(Term("unit", req.unit))
        if req.material_type:
            parts.append(Term("material_type", req.material_type))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else And(parts)

    async def search(self, req: SearchRequest) -> dict[str, Any]:
        if len(req.text or "") > self.settings.max_query_chars:
            raise QueryTooLong(f"搜索内容过长（{len(req.text)} 字），请精简到 {self.settings.max_query_chars} 字以内",
                               field="q", max_chars=self.settings.max_query_chars)
        if self.stale():
            self.kick()
        if req.today is None:
            req.today = dt.datetime.now(self.runtime.settings.tz).date()
        words, terms = self.parse(req.text)
        notice = None
        stripped = fold(unicodedata.normalize("NFKC", req.text or "")).strip()
        if stripped and not words:
            notice = "没有可检索的词（只有标点或常用虚词），请换个说法"
        elif stripped and len(stripped) == 1:
            notice = "只输入了一个字，结果可能不准确，建议输入两个字以上"
        hits: list[Hit]
        exact = True
        if stripped and not words:
            total, hits = 0, []
        else:
            try:
                total, exact, hits = await asyncio.wait_for(asyncio.to_thread(
                    self.index.search, words or None, filter=self._filter(req), page=req.page,
                    pagelen=req.per_page), self.settings.search_timeout)
            except TimeoutError:
                raise Unavailable("知识库检索超时，请稍后重试或换个说法", field="q") from None
        items = []
        width = self.settings.snippet_chars
        for hit in hits:
            f = hit.fields
            plain, marked = snippet(_plain_text(f.get("body", "")), terms, width=width)
            _, title_marked = snippet(f["title"], terms, width=200)
            items.append({
                "id": f["id"], "title": f["title"], "title_highlight": title_marked,
                "category": f.get("category"), "unit_code": f.get("unit"),
                "material_type": f.get("material_type"),
                "hotlines": [h for h in (f.get("hotlines") or "").split(",") if h],
                "keywords": (f.get("keywords") or "").split(),
                "state": f.get("state"), "version": f.get("version"),
                "valid_from": _day(f.get("valid_from")), "valid_to": _day(f.get("valid_to")),
                "score": round(hit.score, 3), "snippet": plain, "highlight": marked,
            })
        result: dict[str, Any] = {"items": items, "total": total, "total_exact": exact, "page": req.page,
                                  "per_page": req.per_page, "terms": terms}
        if notice:
            result["notice"] = notice
        return result


def _day(value: Any) -> str | None:
    if not isinstance(value, int) or value in (0, 99991231):
        return None
    return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"


def _plain_text(markdown: str) -> str:
    lines = []
    for line in markdown.splitlines():
        line = line.strip().lstrip("#>").strip()
        if line.startswith(("- ", "* ", "+ ")):
            line = line[2:]
        lines.append(line.replace("**", "").replace("`", ""))
    return " ".join(x for x in lines if x)


# --- one engine per runtime ------------------------------------------------------------------

_ENGINES: dict[int, KnowledgeBase] = {}


async def get_kb(runtime: Runtime, *, listen: bool = True) -> KnowledgeBase:
    """The runtime's engine, opened (index checked, caught up, listening) on first use."""
    for key, engine in list(_ENGINES.items()):
        if engine.closed or engine.runtime.pool.is_closing():
            _ENGINES.pop(key, None)
            if not engine.closed:
                engine.closed = True
                engine.index.close()
    kb = _ENGINES.get(id(runtime))
    if kb is None or kb.runtime is not runtime:
        kb = KnowledgeBase(runtime)
        _ENGINES[id(runtime)] = kb
    if not kb.opened:
        await kb.open(listen=listen)
    return kb


async def close_kb(runtime: Runtime) -> None:
    kb = _ENGINES.pop(id(runtime), None)
    if kb is not None and kb.runtime is runtime:
        await kb.close()
