"""Chinese text handling: width folding, segmentation with the engine's own jieba
dictionary (:class:`Segmenter`) and highlighted snippets."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import jieba

_WORD_CHARS = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")


# a process-wide memo on purpose: Unicode's own data, the same for every node and
# runtime, no configuration in it (tests/test_config_dir.py lists the allowed ones)
@lru_cache(maxsize=1)
def _width_table() -> dict[int, str]:
    """Characters whose NFKC form is a single different character (full-width Latin,
    digits and punctuation, ideographic space, compatibility ideographs...): folding
    them keeps the text's length, so highlight offsets stay valid."""
    table: dict[int, str] = {}
    for code in range(0x20, 0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        folded = unicodedata.normalize("NFKC", ch)
        if folded != ch and len(folded) == 1:
            table[code] = folded
    return table


def fold(text: str) -> str:
    """Full-width → half-width (NFKC per character, length-preserving), lower case."""
    return text.translate(_width_table()).lower()


class Segmenter:
    """jieba segmentation with this engine's own dictionary (a ``jieba.Tokenizer`` of its
    own: the process-wide default one is never touched, so two engines in one process,
    e.g. two nodes in a test, can hold different dictionaries).

    ``words`` are the domain dictionary's words (hotline terms, service and app names,
    place names); the index is rebuilt when they change (see :attr:`fingerprint`)."""

    def __init__(self, words: Iterable[str] = (), *, cache_dir: Path | None = None) -> None:
        jieba.setLogLevel(logging.WARNING)
        logging.getLogger("jieba").setLevel(logging.WARNING)
        self._tk = jieba.Tokenizer()
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._tk.tmp_dir = str(cache_dir)
            self._tk.cache_file = "jieba.cache"
        self._tk.initialize()
        self.words = tuple(sorted({fold(w).strip() for w in words if w and w.strip()}))
        for word in self.words:
            self._tk.add_word(word, freq=max(self._tk.FREQ.get(word, 0) or 0, 50_000))
        self.fingerprint = hashlib.sha1("\n".join(self.words).encode()).hexdigest()[:16]

    def index_tokens(self, text: str) -> list[str]:
        """Search-mode words of a text (every long word and its shorter known parts),
        meaningful ones only, stop words kept (they are dropped from queries, so a
        stop-word edit needs no reindex)."""
        out = []
        for word, _, _ in self._tk.tokenize(fold(text), mode="search", HMM=False):
            word = word.strip()
            if word and _WORD_CHARS.search(word):
                out.append(word)
        return out

    def query_words(self, text: str, stop_words: frozenset[str] = frozenset()) -> list[str]:
        """The distinct meaningful words of a person's text, in order, cut the longest way."""
        seen: list[str] = []
        for word in self._tk.cut(fold(text), HMM=False):
            word = word.strip()
            if word and _WORD_CHARS.search(word) and word not in stop_words and word not in seen:
                seen.append(word)
        return seen

    def known(self, word: str) -> bool:
        return bool(self._tk.FREQ.get(word))


def snippet(text: str, terms: Iterable[str], *, width: int = 120) -> tuple[str, str]:
    """``(plain, html)``: the window of ``text`` holding the most query terms, with the
    terms wrapped in ``<mark>`` in the HTML form (everything else escaped)."""
    body = " ".join(text.split())
    folded = fold(body)
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    hits: list[tuple[int, int]] = []
    for word in words:
        start = folded.find(word)
        while start != -1 and len(hits) < 200:
            end = start + len(word)
            if not any(s < end and start < e for s, e in hits):
                hits.append((start, end))
            start = folded.find(word, end)
    hits.sort()
    begin = 0
    if hits:
        best, best_count = hits[0][0], 0
        for s, _ in hits:
            count = len({folded[a:b] for a, b in hits if s <= a and b <= s + width})
            if count > best_count:
                best, best_count = s, count
        begin = max(0, best - width // 6)
    end = min(len(body), begin + width)
    plain = ("…" if begin else "") + body[begin:end] + ("…" if end < len(body) else "")
    parts, cursor = [], begin
    for s, e in hits:
        if s < begin or e > end:
            continue
        parts.append(html.escape(body[cursor:s]))
        parts.append("<mark>" + html.escape(body[s:e]) + "</mark>")
        cursor = e
    parts.append(html.escape(body[cursor:end]))
    marked = ("…" if begin else "") + "".join(parts) + ("…" if end < len(body) else "")
    return plain, marked
