"""Index generations (hotline/kb/generation.py): a search keeps reading the generation
it started on while commits go by (it was closed under it before: whoosh's
``Searcher.refresh`` closes the old reader at once), the replaced generation is closed
when the last search gives it back, and the array scoring returns exactly what
whoosh's own exhaustive search returns, with filters, deletions and several segments."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from kbhelpers import WORDS, index_doc, random_docs
from whoosh.query import Term

from hotline.kb.index import KbIndex, candidates
from hotline.kb.lexicon import Lexicon
from hotline.kb.query import Ranker
from hotline.kb.text import Segmenter


def _write(index: KbIndex, segmenter: Segmenter, docs: list[dict[str, Any]], deletes: tuple[str, ...] = (),
           *, clear: bool = False) -> None:
    index.write(docs, deletes, cursor="0-1", instance="t", dictionary=segmenter.fingerprint, clear=clear)


@pytest.fixture
def index(tmp_path: Path, segmenter: Segmenter) -> KbIndex:
    ix = KbIndex(tmp_path / "ix")
    ix.open()
    docs = random_docs(segmenter, varied=True)
    _write(ix, segmenter, docs, clear=True)
    yield ix
    ix.close()


def test_a_search_keeps_its_generation_across_commits(index: KbIndex, segmenter: Segmenter) -> None:
    ranker = Ranker(Lexicon(), segmenter)
    with index.reading() as gen:
        plan = ranker.plan("公积金 噪音", gen.vocab)
        # a publish commits (the writer swaps in a new generation) while this search runs
        _write(index, segmenter, [index_doc(segmenter, "new1", "鹦鹉螺号公积金", "独特词语鹦鹉螺号")], ("a1", "a2"))
        # everything this search still reads comes from the generation it started on:
        # before the fix the commit's refresh had closed this reader (ReaderClosed)
        assert gen.vocab.df("body", "鹦鹉螺") == 0
        total, _, found = candidates(gen, ranker.build_query(plan, gen.vocab), filter=None, limit=500)
        assert "new1" not in {c.fields["id"] for c in found} and {"a1", "a2"} & {c.fields["id"] for c in found}
        assert not gen.closed
        with index.reading() as newer:
            assert newer is not gen and newer.vocab.df("body", "鹦鹉螺") == 1
    # given back by its last search after a newer one replaced it: closed
    assert gen.closed and gen.searcher.is_closed
    with index.reading() as current:
        assert not current.closed and current.vocab.df("body", "鹦鹉螺") == 1


def test_generation_held_by_a_search_is_not_closed_by_several_commits(index: KbIndex, segmenter: Segmenter) -> None:
    with index.reading() as gen:
        for k in range(3):
            _write(index, segmenter, [index_doc(segmenter, f"n{k}", f"新条目{k}", "燃气 供暖")])
        assert [f["id"] for f in gen.searcher.all_stored_fields() if f["id"] == "n0"] == []
        assert gen.searcher.doc_frequency("head", "条目") == 0
    assert gen.closed


def _whoosh_top(index: KbIndex, query: Any, filter: Any, limit: int) -> list[tuple[str, float]]:
    with index.reading() as gen:
        allowed = {int(d) for d in gen.mask(filter).nonzero()[0]}
        results = gen.searcher.search(query, filter=allowed, limit=limit, optimize=False)
        return [(h["id"], round(h.score, 6)) for h in results]


def test_array_scoring_equals_whoosh_with_filters_deletions_and_segments(index: KbIndex,
                                                                        segmenter: Segmenter) -> None:
    # more segments (incremental commits), an update and a delete in the big one
    _write(index, segmenter, [index_doc(segmenter, "a3", "公积金噪音改", "公积金。噪音。物业")], ("a4",))
    _write(index, segmenter, [index_doc(segmenter, f"b{i}", f"医保停车{i}", "医保停车医院" * (i + 1)) for i in range(5)])
    ranker = Ranker(Lexicon(), segmenter)
    rng = random.Random(3)
    filters = [None, Term("state", "published"), Term("hotlines", "12329")]
    with index.reading() as gen:
        assert len(gen.leaves) >= 2
    for _ in range(40):
        text = " ".join(rng.sample(WORDS, rng.randint(1, 4)))
        flt = rng.choice(filters)
        with index.reading() as gen:
            query = ranker.build_query(ranker.plan(text, gen.vocab), gen.vocab)
            total, exact, found = candidates(gen, query, filter=flt, limit=15)
            matched = len(gen.searcher.search(query, filter={int(d) for d in gen.mask(flt).nonzero()[0]},
                                              limit=None))
        expected = _whoosh_top(index, query, flt, 15)
        mine = [(c.fields["id"], round(c.score, 6)) for c in found]
        assert [s for _, s in mine] == pytest.approx([s for _, s in expected], rel=1e-5), text
        # same documents above the cut (ties at the last score may pick either)
        cut = expected[-1][1] if expected else 0
        assert {i for i, s in mine if s > cut + 1e-5} == {i for i, s in expected if s > cut + 1e-5}
        assert exact and total == matched
        assert "a4" not in {i for i, _ in mine}
