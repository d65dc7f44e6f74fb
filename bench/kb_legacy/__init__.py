"""The knowledge-base search engine as it was before issue 14 (commit 8dab08e), kept
for bench/kb_bench.py's side-by-side run only: jieba's process-wide dictionary and
the whoosh analyser inside the index, synonym groups, title-weighted BM25F with a body
postings budget. Not used by the product."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from kb_legacy.index import KbIndex, document
from kb_legacy.synonyms import Synonyms, load_file
from kb_legacy.text import fold, query_terms, setup_jieba, snippet


class LegacyEngine:
    def __init__(self, path: Path, cache_dir: Path, synonyms: Path) -> None:
        setup_jieba(cache_dir)
        self.index = KbIndex(path)
        self.synonyms = Synonyms(load_file(synonyms))

    def rebuild(self, rows: list[Any], *, procs: int = 1) -> int:
        self.index.open()
        return int(self.index.write([document(r) for r in rows], (), cursor=0, instance="legacy", clear=True,
                                    procs=procs))

    def parse(self, text: str) -> tuple[list[list[str]], list[str]]:
        folded = fold(unicodedata.normalize("NFKC", text or "")).strip()
        terms = query_terms(folded)[:32]
        alternatives: list[str] = []
        for term in terms:
            alternatives.extend(sorted(self.synonyms.expand(term)))
        for group in self.synonyms.phrases_in(folded):
            alternatives.extend(sorted(group))
        alternatives = list(dict.fromkeys(alternatives))
        return [query_terms(alt) or [alt] for alt in alternatives], alternatives

    def search(self, text: str, *, filter: Any, per_page: int = 10) -> list[str]:
        words, terms = self.parse(text)
        if not words:
            return []
        _, _, hits = self.index.search(words, filter=filter, page=1, pagelen=per_page)
        for hit in hits:  # the old engine built a snippet for every hit
            snippet(hit.fields.get("body", ""), terms, width=120)
            snippet(hit.fields["title"], terms, width=200)
        return [h.fields["id"] for h in hits]
