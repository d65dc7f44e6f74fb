"""Chinese text handling: width folding, jieba set-up and the whoosh analyzer, query
terms and highlighted snippets.

jieba keeps a process-wide dictionary; :func:`setup_jieba` makes it quiet and puts
its cache file under the data directory (not a shared /tmp file) before first use.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import jieba
from whoosh.analysis import LowercaseFilter, StopFilter, Token, Tokenizer

_jieba_lock = threading.Lock()
_jieba_ready = False

#: words that carry no meaning in a citizen's question (kept short on purpose)
STOP_WORDS = frozenset(
    """的 了 吗 呢 啊 吧 呀 么 是 在 和 与 及 或 我 你 他 她 它 我们 你们 他们 请问 请 问 想 要 想要 需要
    怎么 怎样 怎么样 如何 什么 哪里 哪儿 哪个 哪些 多少 为什么 能不能 可不可以 可以 能 会 应该 有没有 有 没有
    一下 这个 那个 这 那 就 都 也 还 又 把 被 给 对 从 到 向 让 吧 哦 嗯 呃 一个 现在 已经 的话 关于 咨询 问题
    a an and are as at be by for from how i in is it of on or that the this to was what when where which who why
    with""".split()
)

_WORD_CHARS = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")


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


def setup_jieba(cache_dir: Path) -> None:
    """Quiet jieba, keep its cache under ``cache_dir`` and load it once per process.

    The dictionary is never changed at run time (no ``add_word`` from synonyms): the
    index and every later query must segment text the same way. Multi-word synonyms
    are matched as all of their words instead (see the engine)."""
    global _jieba_ready
    with _jieba_lock:
        if not _jieba_ready:
            jieba.setLogLevel(logging.WARNING)
            logging.getLogger("jieba").setLevel(logging.WARNING)
            cache_dir.mkdir(parents=True, exist_ok=True)
            jieba.dt.tmp_dir = str(cache_dir)
            jieba.dt.cache_file = "jieba.cache"
            jieba.dt.initialize()
            _jieba_ready = True


def segment(text: str) -> Iterator[tuple[str, int, int]]:
    """Search-mode tokens ``(word, start, end)`` of folded text, meaningful ones only."""
    for word, start, end in jieba.tokenize(fold(text), mode="search", HMM=False):
        word = word.strip()
        if word and _WORD_CHARS.search(word):
            yield word, start, end


class ChineseTokenizer(Tokenizer):
    """jieba search-mode segmentation over width-folded text (jieba's own
    ``ChineseTokenizer`` without HMM and with folding)."""

    def __call__(self, value: str, positions: bool = False, chars: bool = False,
                 keeporiginal: bool = False, removestops: bool = True, start_pos: int = 0,
                 start_char: int = 0, mode: str = "", **kwargs: Any) -> Iterator[Token]:
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for pos, (word, start, end) in enumerate(segment(value)):
            t.original = t.text = word
            t.boost = 1.0
            if positions:
                t.pos = start_pos + pos
            if chars:
                t.startchar = start_char + start
                t.endchar = start_char + end
            yield t


def chinese_analyzer() -> Any:
    return ChineseTokenizer() | LowercaseFilter() | StopFilter(stoplist=STOP_WORDS, minsize=1)


def query_terms(text: str) -> list[str]:
    """The distinct meaningful words of a person's query, in order, cut the longest
    way (jieba's default mode). The index holds search-mode tokens, i.e. every long
    word *and* its shorter parts, so the longest cut of a query always matches and
    costs the fewest terms."""
    seen: list[str] = []
    for word, _, _ in jieba.tokenize(fold(text), mode="default", HMM=False):
        word = word.strip()
        if word and _WORD_CHARS.search(word) and word not in STOP_WORDS and word not in seen:
            seen.append(word)
    return seen


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
