"""whoosh's block-max skipping must always make progress (issue 11: a search spun at
100 % CPU for minutes in ``UnionMatcher.skip_to_quality`` when float rounding made
``aq + bq <= m`` and ``aq > m - bq`` both true; see hotline/kb/index.py)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest
from kbhelpers import WORDS, index_doc, random_docs
from whoosh.matching.binary import AndMaybeMatcher, UnionMatcher
from whoosh.query import Term

from hotline.kb.index import KbIndex
from hotline.kb.lexicon import Lexicon
from hotline.kb.query import Ranker
from hotline.kb.text import Segmenter


@pytest.fixture
def index(tmp_path: Path, segmenter: Segmenter) -> KbIndex:
    ix = KbIndex(tmp_path / "ix")
    ix.open()
    docs = random_docs(segmenter)
    ix.write(docs, (), cursor="0-1", instance="t", dictionary=segmenter.fingerprint, clear=True)
    return ix


def _bounded(matcher: Any, calls: int = 10_000) -> Any:
    """Make a leaf raise instead of being asked to skip forever."""
    original = matcher.skip_to_quality
    count = 0

    def skip_to_quality(minquality: float) -> int:
        nonlocal count
        count += 1
        if count > calls:
            raise AssertionError("skip_to_quality asked the same leaf to skip again and again")
        return int(original(minquality))

    matcher.skip_to_quality = skip_to_quality
    return matcher


def _rounding_pair(searcher: Any) -> tuple[str, str, float, float]:
    """Two body words whose block qualities meet the rounding trap: m = aq + bq with
    m - bq < aq (the leaf of the weaker word then refuses to skip)."""
    for w1, w2 in itertools.permutations(WORDS, 2):
        aq = Term("body", w1).matcher(searcher).block_quality()
        bq = Term("body", w2).matcher(searcher).block_quality()
        if aq < bq and (aq + bq) - bq < aq:
            return w1, w2, aq, bq
    raise AssertionError("no word pair hits the rounding case in this corpus")


@pytest.mark.parametrize("combine", [UnionMatcher, AndMaybeMatcher])
def test_skip_to_quality_returns_when_rounding_stops_a_side(index: KbIndex, combine: Any) -> None:
    with index._ix.searcher() as s:
        w1, w2, aq, bq = _rounding_pair(s)
        a = _bounded(Term("body", w1).matcher(s))
        b = _bounded(Term("body", w2).matcher(s))
        matcher = combine(a, b)
        first = matcher.id()
        matcher.skip_to_quality(aq + bq)  # whoosh 2.7.4 never returned here
        # nothing that might still reach the minimum was skipped: the current block stays
        assert a.is_active() and b.is_active()
        assert matcher.id() == first


def test_patched_skipping_finds_the_same_top_hits_as_a_full_scan(index: KbIndex, segmenter: Segmenter) -> None:
    """Skipping is an optimisation only: the top hits equal those of an unoptimised search."""
    rng = random.Random(7)
    ranker = Ranker(Lexicon(), segmenter)
    vocab = index.vocabulary()
    with index._ix.searcher() as s:
        for _ in range(60):
            words = rng.sample(WORDS, rng.randint(2, 5))
            query = ranker.build_query(ranker.plan(" ".join(words)), vocab)
            fast = s.search(query, limit=5)
            full = s.search(query, limit=5, optimize=False)
            assert [round(h.score, 9) for h in fast] == [round(h.score, 9) for h in full]
            assert {h["id"] for h in fast if h.score > full[-1].score + 1e-9} == \
                {h["id"] for h in full if h.score > full[-1].score + 1e-9}


def test_look_alike_publishes_are_each_found(index: KbIndex, segmenter: Segmenter) -> None:
    """The benchmark's publish loop: near-identical articles (tied scores fill the top
    page), one incremental commit each, each searched for right after its commit."""
    for k in range(12):
        index.write([index_doc(segmenter, f"t{k}", f"基准测试发布条目{k}", f"这是第{k}条用于测量发布到可检索延迟的知识，独特词语：鹦鹉螺{k}号。")],
                    (), cursor=f"0-{2 + k}", instance="t", dictionary=segmenter.fingerprint)
        _, _, _, hits, _ = Ranker(Lexicon(), segmenter).search(index, f"基准测试发布条目{k}", filter=None, page=1,
                                                               pagelen=3)
        assert f"t{k}" in [h.fields["id"] for h in hits]
