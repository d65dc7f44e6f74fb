"""What a search reads: one generation of the whoosh index, shared by every search
until a newer one replaces it, and the per-segment arrays that make a query cheap.

**Generations** (:class:`Generation`): after every commit the writer opens a new
searcher, warms it (the filters searches used lately, the new segments' arrays) and
swaps it in; searches take the current generation with :meth:`Generation.hold` and
give it back when done. A replaced generation is closed when its last search gives it
back, never under one (whoosh's ``Searcher.refresh`` closes the old reader at once,
which is what left searches reading closed readers). A whoosh reader's files keep a
seek position, so one generation serves one search at a time (``lock``); searches
are GIL-bound Python anyway, so running them one after another costs no throughput.

**Scoring** (:meth:`Generation.top`): whoosh's collector scores a flat OR one posting
at a time through a tree of Python matchers (≈ 2.5 µs a posting, 10,000s of postings
for a multi-word query at 50,000 articles). Here each term's postings are read once
per segment (ids, term frequencies, field lengths as arrays, cached across
generations: a segment never changes, only its deletions do) and the same BM25F
(whoosh's formula, idf and average lengths) is summed with numpy; filters, deletions
and the ``__meta__`` document are one boolean mask per generation.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from whoosh.query import Or, Query, Term
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

#: whoosh's BM25F defaults (the searcher's weighting)
K1 = 1.2
B = 0.75
#: postings kept in memory across queries (ids, weights, lengths: 12 bytes each, so
#: at most ~48 MB; a 50,000-article index holds a few million)
POSTINGS_BUDGET = 4_000_000
#: filter document sets kept per segment
SEGMENT_FILTERS = 512
#: filters re-evaluated for a new generation before it is swapped in
WARM_FILTERS = 16
_LENGTHS = np.array([byte_to_length(i) for i in range(256)], dtype=np.float32)
_META = Term("kind", "meta")


@dataclass(frozen=True, slots=True)
class Candidate:
    fields: dict[str, Any]
    score: float


class Vocabulary:
    """Word statistics of one generation: document frequencies (memoised), words by
    prefix (for one-character query words)."""

    def __init__(self, searcher: Any) -> None:
        self.searcher = searcher
        self.docs = max(1, searcher.doc_count())
        self._df: dict[tuple[str, str], int] = {}
        self._prefix: dict[str, list[str]] = {}

    def df(self, field: str, word: str) -> int:
        key = (field, word)
        value = self._df.get(key)
        if value is None:
            if len(self._df) > 50_000:
                self._df.clear()
            value = self._df[key] = int(self.searcher.doc_frequency(field, word))
        return value

    def idf(self, word: str) -> float:
        df = max(self.df("head", word), self.df("body", word))
        return math.log(1 + (self.docs - df + 0.5) / (df + 0.5)) if df else 0.0

    def with_prefix(self, prefix: str, *, limit: int) -> list[str]:
        """The most frequent longer head words starting with ``prefix``."""
        words = self._prefix.get(prefix)
        if words is None:
            # one pass over each segment's terms with the prefix, frequencies read from
            # the term infos on the way (not a look-up per word across every segment:
            # a common prefix has thousands of words, and this runs once per generation)
            counts: dict[str, int] = {}
            for reader, _ in _leaf_readers(self.searcher):
                for term, info in reader.iter_prefix("head", prefix):
                    word = term.decode() if isinstance(term, bytes) else term
                    if len(word) > len(prefix):
                        counts[word] = counts.get(word, 0) + int(info.doc_frequency())
            found = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
            words = self._prefix[prefix] = [w for w, _ in found[:limit]]
        return words


@dataclass(frozen=True, slots=True)
class Postings:
    """One term's postings in one segment (segment-local document numbers)."""

    ids: np.ndarray
    weights: np.ndarray
    lengths: np.ndarray


_NONE = Postings(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32))


class SegmentStore:
    """Arrays of segments, kept across generations (keyed by whoosh's segment id; a
    segment's documents and postings never change, only which of them are deleted).
    Shared by the generations: guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._postings: OrderedDict[tuple[str, str, str], Postings] = OrderedDict()
        self._size = 0
        self._lengths: dict[tuple[str, str], np.ndarray] = {}
        self._filters: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._postings.clear()
            self._size = 0
            self._lengths.clear()
            self._filters.clear()

    def forget_except(self, segment_ids: set[str]) -> None:
        """Drop the arrays of segments no longer in the index (merged away)."""
        with self._lock:
            for key in [k for k in self._postings if k[0] not in segment_ids]:
                self._size -= len(self._postings.pop(key).ids)
            for pair in [k for k in self._lengths if k[0] not in segment_ids]:
                del self._lengths[pair]
            for pair in [k for k in self._filters if k[0] not in segment_ids]:
                del self._filters[pair]

    def lengths(self, segment_id: str, reader: Any, field: str) -> np.ndarray:
        key = (segment_id, field)
        with self._lock:
            found = self._lengths.get(key)
        if found is None:
            found = _field_lengths(reader, field)
            with self._lock:
                self._lengths[key] = found
        return found

    def postings(self, segment_id: str, reader: Any, field: str, word: str) -> Postings:
        key = (segment_id, field, word)
        with self._lock:
            found = self._postings.get(key)
            if found is not None:
                self._postings.move_to_end(key)
                return found
        found = _read_postings(reader, field, word)
        if len(found.ids):
            found = Postings(found.ids, found.weights, self.lengths(segment_id, reader, field)[found.ids])
        with self._lock:
            self._postings[key] = found
            self._size += len(found.ids)
            while self._size > POSTINGS_BUDGET and len(self._postings) > 1:
                _, old = self._postings.popitem(last=False)
                self._size -= len(old.ids)
        return found

    def filter_docs(self, segment_id: str, key: str, searcher: Any, query: Query) -> np.ndarray:
        """Segment-local numbers of the documents ``query`` matches (deleted ones may be
        among them: the generation's mask drops those)."""
        cache_key = (segment_id, key)
        with self._lock:
            found = self._filters.get(cache_key)
            if found is not None:
                self._filters.move_to_end(cache_key)
                return found
        found = np.fromiter(query.docs(searcher), dtype=np.int32)
        with self._lock:
            self._filters[cache_key] = found
            while len(self._filters) > SEGMENT_FILTERS:
                self._filters.popitem(last=False)
        return found


def _field_lengths(reader: Any, field: str) -> np.ndarray:
    """Every document's length of ``field`` in one segment (whoosh's one-byte encoding,
    decoded as whoosh does)."""
    count = reader.doc_count_all()
    column = reader._perdoc._cached_reader(f"_{field}_len", _lengths_column())
    if column is None:
        return np.zeros(count, dtype=np.float32)
    raw = np.frombuffer(bytes(column._dbfile.get(column._basepos, column._count)), dtype=np.uint8)
    codes = np.zeros(count, dtype=np.uint8)
    codes[: len(raw)] = raw[:count]
    return _LENGTHS[codes]


def _lengths_column() -> Any:
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN

    return LENGTHS_COLUMN


def _read_postings(reader: Any, field: str, word: str) -> Postings:
    """All postings of ``word`` in one segment, block by block (no per-posting matcher
    calls)."""
    try:
        text = reader._text_to_bytes(field, word)
        matcher = reader._terms.matcher(field, text, reader.schema[field].format)
    except (KeyError, TermNotFound):
        return _NONE
    ids: list[Any] = []
    weights: list[Any] = []
    while matcher.is_active():
        # a block is a pickled (delta-coded ids, weights, values) tuple; weights are
        # None (all 1), one float (all the same) or one per posting
        matcher._read_data()
        deltas, w = matcher._data[0], matcher._data[1]
        count = matcher._blocklength
        ids.append(np.cumsum(np.asarray(deltas, dtype=np.int32), dtype=np.int32) if not matcher._byteids
                   else np.asarray(deltas, dtype=np.int32))
        weights.append(np.ones(count, dtype=np.float32) if w is None
                       else np.full(count, w, dtype=np.float32) if isinstance(w, float)
                       else np.asarray(w, dtype=np.float32))
        matcher._next_block()
    if not ids:
        return _NONE
    return Postings(np.concatenate(ids), np.concatenate(weights), _NONE.lengths)


def query_terms(query: Query) -> list[tuple[str, str, float]] | None:
    """``(field, word, boost)`` of a flat OR of terms (or one term); ``None`` for
    anything else (left to whoosh)."""
    parts = query.subqueries if isinstance(query, Or) and query.boost == 1.0 else [query]
    out = []
    for q in parts:
        if not isinstance(q, Term):
            return None
        text = q.text.decode() if isinstance(q.text, bytes) else str(q.text)
        out.append((q.fieldname, text, float(q.boost)))
    return out


class Generation:
    """One opened index generation with its word statistics and filter masks."""

    def __init__(self, searcher: Any, store: SegmentStore) -> None:
        self.searcher = searcher
        self.store = store
        self.vocab = Vocabulary(searcher)
        #: one search at a time (whoosh readers keep file positions)
        self.lock = threading.RLock()
        self.size = searcher.doc_count_all()
        self.leaves: list[tuple[str, Any, Any, int]] = [
            (reader.segment().segment_id(), reader, sub, offset)
            for (reader, offset), (sub, _) in zip(_leaf_readers(searcher), searcher.leaf_searchers(), strict=True)]
        self._masks: dict[str, np.ndarray] = {}
        self._users = 0
        self._retired = False
        self.closed = False
        self._state = threading.Lock()
        live = np.ones(self.size, dtype=bool)
        for segment_id, reader, sub, offset in self.leaves:
            deleted = np.fromiter(reader._perdoc.deleted_docs(), dtype=np.int64)
            live[offset + deleted] = False
            live[offset + store.filter_docs(segment_id, repr(_META), sub, _META)] = False
        self.live = live

    # -- life -----------------------------------------------------------------------
    def acquire(self) -> bool:
        """Count one more search holding this generation; ``False`` when it is closed
        already (the caller takes the current one)."""
        with self._state:
            if self.closed:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._state:
            self._users -= 1
            close = self._retired and self._users == 0 and not self.closed
            if close:
                self.closed = True
        if close:
            self.searcher.close()

    def retire(self) -> None:
        """A newer generation replaced this one: close it once no search holds it."""
        with self._state:
            self._retired = True
            close = self._users == 0 and not self.closed
            if close:
                self.closed = True
        if close:
            self.searcher.close()

    def up_to_date(self) -> bool:
        return bool(self.searcher.up_to_date())

    def segment_ids(self) -> set[str]:
        return {leaf[0] for leaf in self.leaves}

    # -- filters ----------------------------------------------------------------------
    def mask(self, query: Query | None) -> np.ndarray:
        """Live documents (not deleted, not ``__meta__``) the filter allows."""
        if query is None:
            return self.live
        key = repr(query)
        found = self._masks.get(key)
        if found is None:
            found = np.zeros(self.size, dtype=bool)
            for segment_id, _reader, sub, offset in self.leaves:
                found[offset + self.store.filter_docs(segment_id, key, sub, query)] = True
            found &= self.live
            if len(self._masks) > 256:
                self._masks.clear()
            self._masks[key] = found
        return found

    def categories(self, filter: Query | None) -> list[tuple[str, int]]:
        """The top-level categories of the documents ``filter`` allows, with how many
        documents each holds, the largest first."""
        allowed = self.mask(filter)
        counts: list[tuple[str, int]] = []
        for term in self.searcher.reader().lexicon("category_path"):
            name = term.decode() if isinstance(term, bytes) else str(term)
            if "/" in name:
                continue
            query = Term("category_path", name)
            key = repr(query)
            n = 0
            for segment_id, _reader, sub, offset in self.leaves:
                n += int(np.count_nonzero(allowed[offset + self.store.filter_docs(segment_id, key, sub, query)]))
            if n:
                counts.append((name, n))
        counts.sort(key=lambda x: (-x[1], x[0]))
        return counts

    # -- scoring ----------------------------------------------------------------------
    def scores(self, terms: list[tuple[str, str, float]]) -> np.ndarray:
        """The BM25F score of every document for a flat OR of ``terms`` (0: no match)."""
        total = np.zeros(self.size, dtype=np.float64)
        searcher = self.searcher
        for field, word, boost in terms:
            if not self.vocab.df(field, word):
                continue
            idf = searcher.idf(field, word)
            avgfl = searcher.avg_field_length(field) or 1
            for segment_id, reader, _sub, offset in self.leaves:
                p = self.store.postings(segment_id, reader, field, word)
                if not len(p.ids):
                    continue
                w = p.weights.astype(np.float64)
                part = idf * ((w * (K1 + 1)) / (w + K1 * ((1 - B) + B * p.lengths / avgfl)))
                total[offset + p.ids] += part * boost if boost != 1.0 else part
        return total

    def top(self, terms: list[tuple[str, str, float]], filter: Query | None,
            limit: int) -> tuple[int, list[tuple[int, float]]]:
        """``(matches, [(docnum, score)])``: how many allowed documents match, and the
        best ``limit`` of them, best first (ties: lower document number first, as whoosh)."""
        scores = self.scores(terms)
        scores[~self.mask(filter)] = 0.0
        hits = np.flatnonzero(scores > 0)
        matches = len(hits)
        if len(hits) > limit:
            best = np.argpartition(-scores[hits], limit - 1)[:limit]
            hits = hits[best]
        order = np.lexsort((hits, -scores[hits]))
        return matches, [(int(hits[i]), float(scores[hits[i]])) for i in order]


def _leaf_readers(searcher: Any) -> list[tuple[Any, int]]:
    reader = searcher.reader()
    return [(reader, 0)] if reader.is_atomic() else list(reader.leaf_readers())


def open_generation(ix: Any, store: SegmentStore, warm: list[Query]) -> Generation:
    """A new generation of ``ix``, its filters in ``warm`` evaluated beforehand."""
    gen = Generation(ix.searcher(), store)
    for query in warm:
        gen.mask(query)
    for segment_id, reader, _sub, _offset in gen.leaves:
        for field in ("head", "body"):
            store.lengths(segment_id, reader, field)
    return gen
