"""The node's knowledge-base engine: keeps the derived index in step with PostgreSQL
and answers searches.

* At open, the lexicon (seed files + published console entries) is loaded, the
  dictionary cut into the engine's own segmenter, and the index checked against the
  database (instance, schema version, dictionary, cursor neither ahead of the change
  log nor behind its pruned horizon, same set of articles): rebuilt or caught up.
* ``kb.changed`` notifications wake one sync task; a sync reads the shared
  ``change_log`` (entities ``kb_article`` and ``kb_lexicon``) after the index's cursor
  in commit-safe order, so a node that missed notifications (down, or its LISTEN
  connection dropped) catches up from the log, and no writer needs a global lock. A
  lexicon change reloads the lexicon; a dictionary change rebuilds the index.
* Searches run in worker threads, each holding the index generation it started on
  (:mod:`hotline.kb.generation`: swapped in warm after every commit, closed when the
  last search holding it is done); the ranking is :class:`hotline.kb.query.Ranker`.

The runtime's engine: ``await get_kb(runtime)`` (kept by the runtime, never in
module globals).
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
from hotline.feed.changes import START, Cursor, head
from hotline.kb import changes as kb_changes
from hotline.kb.articles import ARTICLE_COLUMNS
from hotline.kb.index import KbIndex, day_number, document
from hotline.kb.lexicon import Lexicon, load_files, load_published
from hotline.kb.popular import popular
from hotline.kb.query import PinyinKeys, Ranked, Ranker, head_words
from hotline.kb.settings import (
    KbSettings,
    dictionary_path,
    index_dir,
    stop_words_path,
    synonyms_path,
)
from hotline.kb.text import Segmenter, fold, snippet
from hotline.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 2000
#: while an older transaction holds the cursor back, look again this often (the rows
#: after it are searchable already; this only moves the cursor on)
HELD_RETRY = 0.25
NOTHING_FOUND = "没有找到相关知识"


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
    #: when nothing relevant is found, add what an agent can try instead (alternatives,
    #: the line's most-read articles and categories: two more queries); callers that
    #: fall back on their own (the screen-pop's ``suggest``) leave it out
    nothing_found_help: bool = True


@dataclass(slots=True)
class EngineStats:
    rebuilds: int = 0
    applied: int = 0
    syncs: int = 0
    lexicon_reloads: int = 0
    last_rebuild_reason: str = ""
    last_sync_at: float = 0.0


class KnowledgeBase:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = KbSettings.from_settings(runtime.settings)
        self.index = KbIndex(index_dir(runtime.settings))
        self.cursor: Cursor = START
        self.instance = ""
        self.stats = EngineStats()
        self.opened = False
        self.closed = False
        self.file_lexicon = Lexicon()
        self.lexicon = Lexicon()
        self.segmenter: Segmenter | None = None
        self.ranker: Ranker | None = None
        #: pinyin keys of the words the index holds (typo correction), kept across reloads
        self.pinyin = PinyinKeys()
        self._write_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._sync_task: asyncio.Task[None] | None = None
        self._dirty = False
        self._unsubscribe: Any = None
        #: changes past a running older transaction, applied already (the cursor waits)
        self._ahead: set[Cursor] = set()

    # -- lifecycle ----------------------------------------------------------------------
    async def open(self, *, listen: bool = True) -> None:
        async with self._open_lock:
            if self.opened:
                return
            settings = self.runtime.settings
            self.file_lexicon = await asyncio.to_thread(
                load_files, dictionary=dictionary_path(settings), stop_words=stop_words_path(settings),
                synonyms=synonyms_path(settings))
            self.instance = await self.runtime.pool.fetchval(
                "SELECT (SELECT value FROM kb_meta WHERE key = 'instance') || ':' || current_database()")
            if listen:
                # subscribe before checking, so nothing committed meanwhile is missed
                listener = await self.runtime.events()
                self._unsubscribe = listener.subscribe(kb_changes.TOPIC, self._on_event)
                listener.on_reconnect.append(self.kick)
            await self._load_lexicon()
            # the agents' filter (published, valid today) is ready in every generation
            live = self._filter(SearchRequest(today=dt.datetime.now(self.runtime.settings.tz).date()))
            self.index.remember_filter(live)
            await self.check()
            # one search before the first person's: the segmenter's and pinyin's first
            # cut, the generation's filter mask and field lengths are paid here
            ranker = self.ranker
            assert ranker is not None
            await asyncio.to_thread(ranker.search, self.index, "公积金怎么提取", filter=live, page=1, pagelen=1)
            self.opened = True

    async def _load_lexicon(self) -> bool:
        """(Re)load the published console entries; a new segmenter when the dictionary
        changed. Returns whether the dictionary changed."""
        lexicon = Lexicon.merge(self.file_lexicon, await load_published(self.runtime.pool))
        changed = self.segmenter is None or set(lexicon.words) != set(self.segmenter.words)
        if changed:
            self.segmenter = await asyncio.to_thread(
                Segmenter, lexicon.words, cache_dir=self.runtime.settings.data_dir / "cache")
        assert self.segmenter is not None
        self.lexicon = lexicon
        self.ranker = Ranker(lexicon, self.segmenter, pinyin=self.pinyin)
        self.stats.lexicon_reloads += 1
        return changed

    async def check(self) -> str:
        """Compare the index with the database; rebuild or catch up. Returns what was done."""
        assert self.segmenter is not None
        meta = await asyncio.to_thread(self.index.open)
        latest = await self.latest()
        reason = ""
        cursor = START
        if meta is not None:
            try:
                cursor = Cursor.parse(meta.cursor)
            except ValidationError:
                meta = None
        horizon = await self.runtime.pool.fetchrow(
            "SELECT txid::text AS txid, change_id, pruned_at FROM change_log_horizon")
        if meta is None:
            reason = "missing or unreadable index, or another schema version"
        elif meta.instance != self.instance:
            reason = "index belongs to another database"
        elif meta.dictionary != self.segmenter.fingerprint:
            reason = "the dictionary changed"
        elif cursor > latest:
            reason = f"index cursor {cursor} is ahead of the change log ({latest}): restored database?"
        elif horizon is not None and horizon["pruned_at"] is not None and \
                cursor < Cursor(int(horizon["txid"]), horizon["change_id"]):
            reason = f"index cursor {cursor} is older than the pruned change log"
        if reason:
            await self.rebuild(reason)
            return f"rebuilt: {reason}"
        self.cursor = cursor
        await asyncio.to_thread(lambda: self.pinyin.add(w for w in self.index.head_terms() if 2 <= len(w) <= 5))
        applied = await self.sync()
        db_ids = {r["id"] for r in await self.runtime.pool.fetch("SELECT id FROM kb_articles")}
        if db_ids != await asyncio.to_thread(self.index.ids):
            await self.rebuild("index and database hold different articles")
            return "rebuilt: index and database held different articles"
        return f"caught up: {applied} change(s) applied from cursor {meta.cursor if meta else cursor}"

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
    async def latest(self) -> Cursor:
        """The change log's newest commit-safe position."""
        return await head(self.runtime.pool)

    def _on_event(self, topic: str, payload: dict[str, Any]) -> None:
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(1.0, self.settings.poll_seconds)
        while True:
            self._dirty = False
            try:
                held = await self._sync_once()
            except Exception:
                log.exception("knowledge-base index sync failed; the next change or poll retries")
                return
            if self.closed:
                return
            if held and loop.time() < deadline:
                # an older transaction still runs: its rows (if any) sort before the
                # newer ones, which are applied already; look again to move the cursor
                await asyncio.sleep(HELD_RETRY)
                continue
            if not self._dirty:
                return

    async def sync(self) -> int:
        """Apply every commit-safe change after the cursor. Returns the number of
        articles written."""
        before = self.stats.applied
        await self._sync_once()
        return self.stats.applied - before

    async def _sync_once(self) -> bool:
        """One pass over the change log; returns whether an older transaction still
        holds the cursor back (the rows after it are applied already)."""
        applied = 0
        held = False
        rebuild = False
        async with self._write_lock:
            if not self.index.is_open:
                return False
            assert self.segmenter is not None
            position = self.cursor
            while True:
                rows, safe = await kb_changes.read_after(self.runtime.pool, position, limit=BATCH)
                if not rows:
                    break
                # rows past a gap were applied on an earlier pass: not again
                fresh = [c for c in rows if c.cursor not in self._ahead]
                ids = list(dict.fromkeys(str(c.data.get("id")) for c in fresh
                                         if c.entity == kb_changes.ARTICLE and c.data.get("id")))
                lexicon_changed = any(c.entity == kb_changes.LEXICON for c in fresh)
                records = await self.runtime.pool.fetch(
                    f"SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE id = ANY($1)",  # noqa: S608 (constant)
                    ids) if ids else []
                docs = [document(r, self.segmenter) for r in records]
                for doc in docs:
                    self.pinyin.add(head_words(doc))
                deletes = sorted(set(ids) - {r["id"] for r in records})
                before = self.cursor
                if not held and safe is not None:
                    self.cursor = safe
                held = held or safe != rows[-1].cursor
                position = rows[-1].cursor
                if held:
                    self._ahead.update(c.cursor for c in fresh if c.cursor > self.cursor)
                self._ahead = {c for c in self._ahead if c > self.cursor}
                if docs or deletes or self.cursor != before:
                    await asyncio.to_thread(self.index.write, docs, deletes, cursor=str(self.cursor),
                                            instance=self.instance, dictionary=self.segmenter.fingerprint)
                applied += len(docs) + len(deletes)
                if lexicon_changed and await self._load_lexicon():
                    rebuild = True
                    break
                if len(rows) < BATCH:
                    break
            self.stats.syncs += 1
            self.stats.applied += applied
            self.stats.last_sync_at = time.monotonic()
        if rebuild:
            await self.rebuild("the dictionary changed")
        return held

    async def rebuild(self, reason: str = "requested", *, procs: int = 1) -> int:
        """Rebuild the whole index from one consistent snapshot of the database."""
        async with self._write_lock:
            assert self.segmenter is not None
            segmenter = self.segmenter
            if not self.index.is_open:
                await asyncio.to_thread(self.index.open)
            async with self.runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                             readonly=True):
                cursor = await head(conn)
                rows = await conn.fetch(f"SELECT {ARTICLE_COLUMNS} FROM kb_articles")  # noqa: S608
            docs = await asyncio.to_thread(lambda: [document(r, segmenter) for r in rows])
            await asyncio.to_thread(self._learn, docs)
            count = await asyncio.to_thread(self.index.write, docs, (), cursor=str(cursor), instance=self.instance,
                                            dictionary=segmenter.fingerprint, clear=True, procs=procs)
            self.cursor = cursor
            self._ahead = set()
            self.stats.rebuilds += 1
            self.stats.last_rebuild_reason = reason
            log.info("knowledge-base index rebuilt (%s): %d articles, cursor %s", reason, count, cursor)
        await self.sync()
        return count

    def _learn(self, docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            self.pinyin.add(head_words(doc))

    def stale(self) -> bool:
        return time.monotonic() - self.stats.last_sync_at > self.settings.poll_seconds

    # -- searching ------------------------------------------------------------------------
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
        assert self.ranker is not None
        ranker = self.ranker
        text = unicodedata.normalize("NFKC", req.text or "")
        try:
            plan, total, exact, hits, suggestions = await asyncio.wait_for(asyncio.to_thread(
                ranker.search, self.index, text, filter=self._filter(req), page=req.page,
                pagelen=req.per_page), self.settings.search_timeout)
        except TimeoutError:
            raise Unavailable("知识库检索超时，请稍后重试或换个说法", field="q") from None
        notice = None
        stripped = fold(text).strip()
        if stripped and plan.empty:
            notice = "没有可检索的词（只有标点或常用虚词），请换个说法"
        elif stripped and plan.chars == 1:
            notice = "只输入了一个字，结果可能不准确，建议输入两个字以上"
        elif stripped and not hits:
            notice = NOTHING_FOUND
        terms = plan.highlight
        result: dict[str, Any] = {"items": [self._item(h, terms) for h in hits], "total": total,
                                  "total_exact": exact, "page": req.page, "per_page": req.per_page,
                                  "terms": terms}
        if notice:
            result["notice"] = notice
        if stripped and not hits:
            result["suggestions"] = [self._item(h, terms) for h in suggestions]
            result["hint"] = "换个说法试试：说出要办的事或遇到的问题（如“公积金提取”“噪音扰民”），或按热线、分类浏览"
            if req.nothing_found_help:
                result.update(await self._nothing_found(req, ranker, text))
        return result

    async def _nothing_found(self, req: SearchRequest, ranker: Ranker, text: str) -> dict[str, Any]:
        """What an agent still on the call can try when nothing relevant was found: what
        the caller may have meant (homophone typos, words typed in pinyin), the line's
        most-read articles and its categories to browse."""
        assert req.today is not None
        line = req.hotline if req.hotline != "12345" else None  # 12345 answers for every line
        live = self._filter(SearchRequest(hotline=line, today=req.today))

        def from_index() -> tuple[list[str], list[tuple[str, int]]]:
            alternatives = ranker.alternatives(self.index, text)
            with self.index.reading() as gen:
                return alternatives, gen.categories(live)[:8]

        (alternatives, categories), most_read = await asyncio.gather(
            asyncio.to_thread(from_index), popular(self.runtime.pool, line=line, today=req.today, limit=5))
        return {"alternatives": alternatives, "popular": most_read,
                "categories": [{"category": name, "count": n} for name, n in categories]}

    def _item(self, hit: Ranked, terms: list[str]) -> dict[str, Any]:
        f = hit.fields
        plain, marked = snippet(_plain_text(f.get("body_text", "")), terms, width=self.settings.snippet_chars)
        _, title_marked = snippet(f["title"], terms, width=200)
        return {
            "id": f["id"], "title": f["title"], "title_highlight": title_marked,
            "category": f.get("category"), "unit_code": f.get("unit"),
            "material_type": f.get("material_type"),
            "hotlines": [h for h in (f.get("hotlines") or "").split(",") if h],
            "keywords": (f.get("keywords") or "").split(),
            "state": f.get("state"), "version": f.get("version"),
            "valid_from": _day(f.get("valid_from")), "valid_to": _day(f.get("valid_to")),
            "score": round(hit.score, 3), "snippet": plain, "highlight": marked,
        }


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

async def get_kb(runtime: Runtime, *, listen: bool = True) -> KnowledgeBase:
    """The runtime's engine (kept by the runtime), opened (index checked, caught up,
    listening) on first use."""
    kb = runtime.kb_engine
    if not isinstance(kb, KnowledgeBase) or kb.closed or kb.runtime is not runtime:
        kb = runtime.kb_engine = KnowledgeBase(runtime)
    if not kb.opened:
        await kb.open(listen=listen)
    return kb


async def close_kb(runtime: Runtime) -> None:
    kb, runtime.kb_engine = runtime.kb_engine, None
    if isinstance(kb, KnowledgeBase):
        await kb.close()
