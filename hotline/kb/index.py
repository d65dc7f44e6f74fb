"""The node's derived whoosh index (blocking calls: the engine runs them in threads).

The change-log cursor, the database instance and the schema version are kept in a
``__meta__`` document inside the index itself, so they commit atomically with the
articles they describe. whoosh's own file lock serialises writers across processes
(a node and ``hotline kb reindex`` on the same directory).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import index as windex
from whoosh.analysis import SpaceSeparatedTokenizer
from whoosh.fields import ID, KEYWORD, NUMERIC, STORED, TEXT, Schema
from whoosh.index import LockError
from whoosh.matching import binary as _binary
from whoosh.matching.mcore import ReadTooFar
from whoosh.query import Every, Query
from whoosh.writing import CLEAR

from hotline.kb.generation import (
    WARM_FILTERS,
    Candidate,
    Generation,
    SegmentStore,
    Vocabulary,
    open_generation,
    query_terms,
)
from hotline.kb.text import Segmenter

#: bump when the schema or the analysis changes: nodes rebuild on start
SCHEMA_VERSION = 3
META_ID = "__meta__"
OPEN_END = 99991231


def schema() -> Schema:
    """Text fields hold words the engine's :class:`Segmenter` cut beforehand, separated
    by spaces (no analyser runs inside whoosh: the dictionary belongs to the engine, and
    a query costs no analysis), without positions (a person's words are matched as
    words); date fields without tiered range terms; bookkeeping fields stored only."""
    words = SpaceSeparatedTokenizer()
    return Schema(
        id=ID(stored=True, unique=True),
        kind=ID(stored=True),
        # title, keywords and category words in one field, so that a word costs two
        # posting lists (head, body) instead of four; the title's own words are kept
        # (stored) for the ranking's title evidence
        head=TEXT(analyzer=words, phrase=False),
        title=STORED(),
        title_words=STORED(),
        keywords=STORED(),
        body=TEXT(analyzer=words, phrase=False),
        body_text=STORED(),
        category=STORED(),
        category_path=KEYWORD(commas=True),
        unit=ID(stored=True),
        hotlines=KEYWORD(commas=True, stored=True),
        state=ID(stored=True),
        material_type=ID(stored=True),
        valid_from=NUMERIC(int, bits=32, stored=True, shift_step=0),
        valid_to=NUMERIC(int, bits=32, stored=True, shift_step=0),
        review_due=STORED(),
        version=STORED(),
        updated=NUMERIC(int, bits=64, stored=True, sortable=True, shift_step=0),
        cursor=STORED(),
        instance=STORED(),
        dictionary=STORED(),
        schema_version=STORED(),
    )


#: incremental commits add small segments; they are merged once there are this many
#: segments below SMALL_SEGMENT_DOCS documents. Big segments are never merged here:
#: whoosh's default policy merges *all* segments while there are few, i.e. rewrites a
#: 50,000-article index on every publish.
MAX_SMALL_SEGMENTS = 8
SMALL_SEGMENT_DOCS = 2000


def _merge_small_only(writer: Any, segments: list[Any]) -> list[Any]:
    from whoosh.reading import SegmentReader

    small = [s for s in segments if s.doc_count_all() < SMALL_SEGMENT_DOCS]
    if len(small) < MAX_SMALL_SEGMENTS:
        return list(segments)
    for segment in small:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        writer.add_reader(reader)
        reader.close()
    return [s for s in segments if s not in small]


# --- whoosh 2.7.4: block-max skipping that can spin forever ---------------------------------
#
# ``UnionMatcher.skip_to_quality`` (and ``AndMaybeMatcher``'s copy of it) loops
# ``while aq + bq <= minquality`` and asks the weaker side to skip to ``minquality - bq``.
# In floating point ``aq + bq <= m`` and ``aq > m - bq`` can both hold (e.g. aq = 3.0794504850752910,
# bq = 3.2958376673267393, m = aq + bq: m - bq = 3.0794504850752906). The leaf then refuses
# to skip (its block already beats the target), nothing changes, and the loop runs
# forever at 100 % CPU with the GIL: the searching thread never returns, the node cannot
# exit (the executor's threads are joined at shutdown), SIGTERM seems ignored. The
# collector's minimum score is the score of the k-th best hit, i.e. exactly such a sum
# when near-identical articles tie (the 50,000-article benchmark's fourth look-alike
# "基准测试发布条目3" with per_page 3). whoosh is no longer maintained, so the loop is
# replaced here by one that stops when a side cannot move: skipping is only an
# optimisation, and the collector then looks at the current posting and moves on.

def _skip_side(side: Any, target: float) -> tuple[int, bool]:
    """Ask ``side`` to skip below ``target``; ``(skipped, moved)``."""
    before = side.block_quality()
    skipped = side.skip_to_quality(target)
    return skipped, bool(skipped) or not side.is_active() or side.block_quality() != before


def _additive_skip(a: Any, b: Any, minquality: float) -> int:
    skipped = 0
    aq, bq = a.block_quality(), b.block_quality()
    while a.is_active() and b.is_active() and aq + bq <= minquality:
        if aq < bq:
            n, moved = _skip_side(a, minquality - bq)
        else:
            n, moved = _skip_side(b, minquality - aq)
        skipped += n
        if not moved:
            break  # rounding: the current block may still reach minquality
        aq, bq = a.block_quality(), b.block_quality()
    return skipped


def _union_skip_to_quality(self: Any, minquality: float) -> int:
    self._id = None
    a, b = self.a, self.b
    if not (a.is_active() or b.is_active()):
        raise ReadTooFar
    if not a.is_active():
        return int(b.skip_to_quality(minquality))
    if not b.is_active():
        return int(a.skip_to_quality(minquality))
    return _additive_skip(a, b, minquality)


def _and_maybe_skip_to_quality(self: Any, minquality: float) -> int:
    a, b = self.a, self.b
    if not a.is_active():
        raise ReadTooFar
    if not b.is_active():
        return int(a.skip_to_quality(minquality))
    return _additive_skip(a, b, minquality)


_binary.UnionMatcher.skip_to_quality = _union_skip_to_quality
_binary.AndMaybeMatcher.skip_to_quality = _and_maybe_skip_to_quality


def day_number(value: dt.date | None, default: int = 0) -> int:
    return default if value is None else value.year * 10000 + value.month * 100 + value.day


def document(row: Mapping[str, Any], segmenter: Segmenter) -> dict[str, Any]:
    """The index document of an article row (live content only)."""
    parts = row["category"].split("/")
    keywords = " ".join(row["keywords"] or ())
    title_words = segmenter.index_tokens(row["title"])
    head = [*title_words, *segmenter.index_tokens(keywords), *segmenter.index_tokens(" ".join(parts))]
    return {
        "id": row["id"],
        "kind": "article",
        "title": row["title"],
        "title_words": " ".join(dict.fromkeys(title_words)),
        "keywords": keywords,
        "head": " ".join(head),
        "body": " ".join(segmenter.index_tokens(row["body"])),
        "body_text": row["body"],
        "category": row["category"],
        "category_path": ",".join("/".join(parts[: i + 1]) for i in range(len(parts))),
        "unit": row["unit_code"],
        "hotlines": ",".join(row["hotlines"] or ()),
        "state": row["state"],
        "material_type": row["material_type"],
        "valid_from": day_number(row["valid_from"]),
        "valid_to": day_number(row["valid_to"], OPEN_END),
        "review_due": day_number(row["review_due"], OPEN_END),
        "version": int(row["version"]),
        "updated": int(row["updated_at"].timestamp() * 1000),
    }


@dataclass(frozen=True, slots=True)
class IndexMeta:
    #: the change-log position (``txid-id``, :class:`hotline.feed.changes.Cursor`)
    cursor: str
    instance: str
    #: the fingerprint of the dictionary the index was cut with
    dictionary: str
    schema_version: int
    articles: int


class KbIndex:
    """The index directory of one node: writes (one writer, the engine's) and the
    generation searches read (see :mod:`hotline.kb.generation`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ix: Any = None
        self._open_lock = threading.Lock()
        #: the generation searches take; swapped (never closed under a search) after a commit
        self._current: Generation | None = None
        self._swap_lock = threading.Lock()
        self.store = SegmentStore()
        #: filters searches used lately (warmed in every new generation)
        self._recent: OrderedDict[str, Query] = OrderedDict()

    # -- opening ------------------------------------------------------------------
    def open(self) -> IndexMeta | None:
        """Open the index; ``None`` when it is missing, unreadable or of another schema
        (the caller rebuilds)."""
        with self._open_lock:
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                self._retire_current()
                if windex.exists_in(str(self.path)):
                    self._ix = windex.open_dir(str(self.path))
                    meta = self.meta()
                    if meta is not None and set(self._ix.schema.names()) == set(schema().names()):
                        return meta
            except Exception:  # a damaged index is rebuilt, never trusted
                pass
            # missing, damaged or of another schema version: start a new, empty one
            # (whoosh keeps an index's schema, so a rebuild must not reuse the old one)
            self._ix = windex.create_in(str(self.path), schema())
            return None

    def _retire_current(self) -> None:
        with self._swap_lock:
            old, self._current = self._current, None
        if old is not None:
            old.retire()

    def meta(self) -> IndexMeta | None:
        with self._ix.searcher() as s:
            stored = s.document(id=META_ID)
            count = s.doc_count() - (1 if stored else 0)
        if not stored or stored.get("schema_version") != SCHEMA_VERSION:
            return None
        return IndexMeta(str(stored["cursor"]), stored.get("instance", ""), stored.get("dictionary", ""),
                         SCHEMA_VERSION, count)

    @property
    def is_open(self) -> bool:
        return self._ix is not None

    # -- writing ------------------------------------------------------------------
    def write(self, docs: Iterable[dict[str, Any]], deletes: Iterable[str], *, cursor: str, instance: str,
              dictionary: str, clear: bool = False, timeout: float = 60.0, procs: int = 1) -> int:
        """Apply documents and deletions and move the cursor, in one commit. ``clear``
        replaces the whole index (a rebuild). Returns how many documents were written."""
        try:
            if procs > 1:
                writer = self._ix.writer(timeout=timeout, procs=procs, limitmb=128, multisegment=True)
            else:
                writer = self._ix.writer(timeout=timeout)
        except LockError as exc:
            raise TimeoutError(f"index {self.path} is locked by another writer") from exc
        written = 0
        try:
            add = writer.add_document if clear else writer.update_document
            for doc in docs:
                add(**doc)
                written += 1
            if not clear:
                for article_id in deletes:
                    writer.delete_by_term("id", article_id)
            meta = {"id": META_ID, "kind": "meta", "cursor": cursor, "instance": instance,
                    "dictionary": dictionary, "schema_version": SCHEMA_VERSION}
            if clear:
                writer.add_document(**meta)
                writer.commit(mergetype=CLEAR)
            else:
                writer.update_document(**meta)
                writer.commit(mergetype=_merge_small_only)
        except BaseException:
            writer.cancel()
            raise
        self.advance()
        return written

    # -- reading ------------------------------------------------------------------
    def advance(self) -> None:
        """Open the index's newest generation, warm it (the filters searches used lately,
        the new segments' arrays) and swap it in; the replaced one is closed when the
        last search holding it is done. The writer calls this after every commit, so
        the first search after a publish finds everything ready."""
        with self._open_lock:
            ix = self._ix
            if ix is None:
                return
            with self._swap_lock:
                warm = list(self._recent.values())
            gen = open_generation(ix, self.store, warm)
            with self._swap_lock:
                old, self._current = self._current, gen
        if old is not None:
            old.retire()
        self.store.forget_except(gen.segment_ids())

    @contextmanager
    def reading(self) -> Iterator[Generation]:
        """Hold the current generation for one search (one search at a time per
        generation); a commit meanwhile swaps in a new one without closing this."""
        while True:
            with self._swap_lock:
                gen = self._current
            if gen is None or gen.closed or not gen.up_to_date():
                # first use, or another process (``hotline kb reindex``) committed
                self.advance()
                with self._swap_lock:
                    gen = self._current
                if gen is None:
                    raise RuntimeError(f"index {self.path} is not open")
            if gen.acquire():
                break
            # retired and closed between taking and holding it: take the newer one
        try:
            with gen.lock:
                yield gen
        finally:
            gen.release()

    def remember_filter(self, query: Query | None) -> None:
        if query is None:
            return
        key = repr(query)
        with self._swap_lock:
            self._recent[key] = query
            self._recent.move_to_end(key)
            while len(self._recent) > WARM_FILTERS:
                self._recent.popitem(last=False)

    def vocabulary(self) -> Vocabulary:
        """The current generation's word statistics (tests and tools; a search uses the
        one of the generation it holds)."""
        with self.reading() as gen:
            return gen.vocab

    def head_terms(self) -> list[str]:
        """Every word of the head field (titles, keywords, categories)."""
        with self.reading() as gen:
            return [t.decode() if isinstance(t, bytes) else t for t in gen.searcher.reader().lexicon("head")]

    def ids(self) -> set[str]:
        with self.reading() as gen:
            return {f["id"] for f in gen.searcher.all_stored_fields() if f.get("kind") == "article"}

    def close(self) -> None:
        with self._open_lock, self._swap_lock:
            old, self._current = self._current, None
            self._ix = None
        if old is not None:
            old.retire()
        self.store.clear()


def candidates(gen: Generation, query: Query | None, *, filter: Query | None,
               limit: int) -> tuple[int, bool, list[Candidate]]:
    """``(total, total_is_exact, candidates)``: the best ``limit`` documents of ``query``
    in the generation ``gen`` (``None``: every document, newest first). A flat OR of
    terms is scored with the generation's arrays (exact count); anything else by whoosh."""
    allowed = gen.mask(filter)
    if not allowed.any():
        return 0, True, []
    terms = query_terms(query) if query is not None else None
    searcher = gen.searcher
    if terms is not None:
        total, best = gen.top(terms, filter, limit)
        return total, True, [Candidate(dict(searcher.stored_fields(doc)), score) for doc, score in best]
    kwargs: dict[str, Any] = {"filter": set(np.flatnonzero(allowed).tolist()), "limit": limit}
    if query is None:
        query = Every()
        kwargs["sortedby"] = "updated"
        kwargs["reverse"] = True
    results = searcher.search(query, **kwargs)
    scored = results.scored_length()
    exact, total = (True, len(results)) if "sortedby" in kwargs else (scored < limit, scored)
    return total, exact, [Candidate(dict(results[i].fields()), float(results[i].score or 0.0)) for i in range(scored)]
