"""Homophone-typo tolerance, measured (not a test): every utterance of
tests/kb/relevance.yaml gets one character of one of its words replaced by the most
common other character with the same toneless pinyin (公积金 → 公及金), the way a
hurried agent or a speech recogniser writes it; recall@5 is compared with the pinyin
correction on and off.

    .venv/bin/python bench/kb_typos.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import jieba
import yaml
from pypinyin import Style, lazy_pinyin

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kb_relevance import RELEVANCE, build, figures, run  # noqa: E402


def main() -> None:
    ranker, index, live = build()
    jieba.setLogLevel(60)
    jieba.initialize()
    freq = jieba.dt.FREQ
    by_key: dict[str, list[tuple[int, str]]] = {}
    for code in range(0x4E00, 0x9FA6):
        ch = chr(code)
        f = freq.get(ch, 0)
        if f > 1000:
            by_key.setdefault(lazy_pinyin(ch, style=Style.NORMAL)[0], []).append((f, ch))
    for chars in by_key.values():
        chars.sort(reverse=True)
    vocab = index.vocabulary()
    cases = yaml.safe_load(RELEVANCE.read_text(encoding="utf-8"))
    typo_cases = []
    for case in cases:
        text = case["question"]
        words = [w for w in ranker.segmenter.query_words(text, ranker.lexicon.stop_words)
                 if len(w) >= 2 and vocab.df("head", w) and all("\u4e00" <= c <= "\u9fff" for c in w)]
        if not words:
            continue
        word = max(words, key=vocab.idf)
        i = len(word) - 1
        key = lazy_pinyin(word[i], style=Style.NORMAL)[0]
        other = next((c for _, c in by_key.get(key, []) if c != word[i]), None)
        if other is None:
            continue
        typo_cases.append({**case, "question": text.replace(word, word[:i] + other + word[i + 1:], 1)})
    on = run(ranker, index, live, typo_cases)

    class Off:
        def corrections(self, *args: object, **kwargs: object) -> list[tuple[str, str]]:
            return []

        def add(self, words: object) -> None:
            pass

    ranker.pinyin = Off()  # type: ignore[assignment]
    off = run(ranker, index, live, typo_cases)
    print(f"{len(typo_cases)} utterances with one homophone typo in their rarest title word, e.g.:")
    for case in typo_cases[:5]:
        print(f"  {case['question']}")
    for name, results in (("on ", on), ("off", off)):
        f = figures(results)
        print(f"  correction {name}: recall@1 {f['r1']:.3f}  recall@5 {f['r5']:.3f}  MRR {f['mrr']:.3f}")


if __name__ == "__main__":
    main()
