"""From a citizen's words to ranked articles (pure: no database, no event loop).

1. **Plan** (:meth:`Ranker.plan`): width-fold; colloquial phrases and multi-character
   synonyms found anywhere in the text add the words the articles use; the text is cut
   with the engine's dictionary, stop words dropped; each word brings its synonyms;
   a word the index does not know is corrected by its pinyin (公鸡金 → 公积金) when a
   known word sounds the same; a one-character word also looks for the index's words
   that start with it (退 → 退款, 退费). Every word belongs to a *group* (a word with
   its synonyms, corrections and completions) so that evidence is counted once per
   thing the person said.
2. **Retrieve**: one flat OR of ``head`` (title, keywords, category) and ``body``
   terms with query-time weights; common words are looked up in titles only once the
   bodies' posting budget is spent (a common word's long posting list costs more than
   its weight adds).
3. **Rank** the candidates: BM25F score × coverage (the share of the query's
   information, by idf per group, the article matched) ^ ``coverage_power``, plus title
   evidence; then **diversity**: an article adding no new group in a category already
   shown steps down, so a two-topic utterance gets both topics in the top 5.
4. **Floor**: when the best article's evidence is below the floor, nothing relevant
   was found ("没有找到相关知识"), and the best few are offered as suggestions.

The weights (:class:`RankParams`) were tuned on the tuning part of the relevance set
(``tests/kb/relevance.yaml``; ``bench/kb_relevance.py --tune``), not guessed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pypinyin import Style, lazy_pinyin
from whoosh.query import Or, Query, Term

from hotline.kb.generation import Candidate, Generation, Vocabulary
from hotline.kb.index import KbIndex, candidates
from hotline.kb.lexicon import Lexicon
from hotline.kb.text import Segmenter, fold


@dataclass(frozen=True, slots=True)
class RankParams:
    """Weights tuned by ``bench/kb_relevance.py --tune`` (grid search on the tuning part
    of tests/kb/relevance.yaml; objective MRR + recall@5 + paraphrase-only recall@5 +
    share of nonsense refused). The head (title, keywords, category) weighs 3 against
    the body's 1 per word, but the coverage factor makes an article that matches more of
    what was said win over one whose title shares a side word."""

    head: float = 3.0
    body: float = 1.0
    synonym: float = 0.6
    phrase: float = 1.2
    typo: float = 0.8
    prefix: float = 0.35
    prefix_words: int = 6
    coverage_power: float = 1.0
    title_bonus: float = 0.0
    diversity: float = 0.5
    #: idf-weighted evidence the best article needs (below: "nothing relevant")
    floor: float = 3.0
    #: ... or this share of the idf of a word found in one article, if lower (a small
    #: knowledge base has low idfs everywhere)
    floor_share: float = 0.63
    candidates: int = 40
    #: share of bodies above which a word is looked up in titles only
    common_share: float = 0.2
    #: body postings one query may look up (a ranking choice since the array scoring of
    #: hotline/kb/generation.py: common words' bodies add noise, not evidence)
    body_budget: int = 12_000
    max_words: int = 24
    #: words one query looks up (a long utterance keeps its strongest)
    max_terms: int = 16
    #: above this many term lists, whoosh's array union matcher (see build_query; only
    #: when a query is left to whoosh's collector)
    tree_clauses: int = 4


@dataclass(slots=True)
class QueryWord:
    word: str
    weight: float
    group: int


@dataclass(slots=True)
class Plan:
    words: list[QueryWord] = field(default_factory=list)
    #: group → its words (what the person said, with synonyms and corrections)
    groups: dict[int, list[str]] = field(default_factory=dict)
    #: words to highlight in snippets
    highlight: list[str] = field(default_factory=list)
    #: text was given but held nothing meaningful (punctuation and fillers only)
    empty: bool = False
    #: letters, digits and Chinese characters in the text
    chars: int = 0


@dataclass(slots=True)
class Ranked:
    fields: dict[str, Any]
    score: float
    evidence: float
    coverage: float
    #: every group the query has matched the head (title, keywords) with a real word
    head_full: bool = False


def head_words(doc: dict[str, Any]) -> list[str]:
    """The words of an index document's head worth a pinyin key (2 to 5 characters)."""
    return [w for w in set(doc.get("head", "").split()) if 2 <= len(w) <= 5]


class PinyinKeys:
    """Toneless pinyin keys of the words the engine knows (dictionary, lexicon, the
    index's head words), for homophone typos: a query window that sounds like a known
    word but is written differently, and is itself no known word, is that word."""

    def __init__(self) -> None:
        self._key: dict[str, str] = {}
        self._by_key: dict[str, set[str]] = {}
        #: the key without spaces (a word typed in pinyin: gongjijin → 公积金)
        self._by_spelling: dict[str, set[str]] = {}

    @staticmethod
    def key_of(word: str) -> str:
        return " ".join(lazy_pinyin(word, style=Style.NORMAL, errors="ignore"))

    def add(self, words: Any) -> None:
        """Learn words (cheap for words already known: one dictionary look-up)."""
        for word in words:
            if 2 <= len(word) <= 5 and word not in self._key and all("\u4e00" <= ch <= "\u9fff" for ch in word):
                key = self._key[word] = self.key_of(word)
                self._by_key.setdefault(key, set()).add(word)
                self._by_spelling.setdefault(key.replace(" ", ""), set()).add(word)

    def spelled(self, letters: str) -> set[str]:
        """Known words whose toneless pinyin is ``letters`` (``shebao`` → 社保)."""
        return self._by_spelling.get(letters.lower(), set())

    def corrections(self, text: str, known: Callable[[str], bool],
                    stop_chars: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
        """``(window, word)`` pairs: windows of 2 to 4 Chinese characters of ``text``
        that sound like a known word, differ from it in one character, are not
        themselves known and hold no one-character stop word (不懂 is not 不动)."""
        if not self._by_key:
            return []
        out: list[tuple[str, str]] = []
        for run in _han_runs(text):
            if len(run) < 2:
                continue
            syllables = lazy_pinyin(run, style=Style.NORMAL, errors="default")
            if len(syllables) != len(run):
                continue
            for size in (4, 3, 2):
                for i in range(len(run) - size + 1):
                    window = run[i:i + size]
                    if window in self._key or known(window) or any(ch in stop_chars for ch in window):
                        continue
                    for word in self._by_key.get(" ".join(syllables[i:i + size]), ()):
                        if word != window and sum(a != b for a, b in zip(word, window, strict=True)) == 1:
                            out.append((window, word))
        return out


_LATIN = re.compile(r"[a-z]{2,}")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def _han_runs(text: str) -> list[str]:
    runs, current = [], []
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff":
            current.append(ch)
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


class Ranker:
    """Plans and ranks with one lexicon and segmenter. ``pinyin`` (the keys of known
    words, kept by the engine across lexicon reloads and fed with the head words of
    every document it indexes) serves the typo correction."""

    def __init__(self, lexicon: Lexicon, segmenter: Segmenter, params: RankParams | None = None,
                 pinyin: PinyinKeys | None = None) -> None:
        self.lexicon = lexicon
        self.segmenter = segmenter
        self.params = params or RankParams()
        self.pinyin = pinyin or PinyinKeys()
        self.pinyin.add(lexicon.words)
        for group in lexicon.groups:
            self.pinyin.add(group)
        for phrase in lexicon.phrases:
            self.pinyin.add(phrase.means)
        self._max_idf = 10.0

    # -- planning -------------------------------------------------------------------
    def plan(self, text: str, vocab: Vocabulary | None = None) -> Plan:
        p = self.params
        folded = fold(unicodedata.normalize("NFKC", text or "")).strip()
        plan = Plan()
        if not folded:
            return plan
        plan.chars = sum(1 for ch in folded if ch.isalnum())
        stops = self.lexicon.stop_words
        seen: dict[str, QueryWord] = {}

        def add(word: str, weight: float, group: int) -> None:
            word = fold(word).strip()
            if not word or word in stops:
                return
            have = seen.get(word)
            if have is None:
                seen[word] = have = QueryWord(word, weight, group)
                plan.words.append(have)
                plan.groups.setdefault(group, []).append(word)
            elif weight > have.weight:
                have.weight = weight

        words = self.segmenter.query_words(folded, stops)[: p.max_words]
        # homophone typos first: the characters of a corrected window are the corrected
        # word's, not one-character words of their own (社宝卡 is 社保卡, not 社 + 宝 + 卡)
        fixes: list[tuple[str, str]] = []
        if vocab is not None:
            fixes = self.pinyin.corrections(folded, self._known_in(vocab),
                                            frozenset(w for w in stops if len(w) == 1))
        group = 0
        fix_group: dict[str, int] = {}
        for word in words:
            window = next((w for w, _ in fixes if word in w), None)
            if window is not None and len(word) == 1:
                fix_group.setdefault(window, group)
                group += 1
                continue
            add(word, 1.0, group)
            if window is not None:
                fix_group.setdefault(window, group)
            for alt in sorted(self.lexicon.expand(word) - {word}):
                add(alt, p.synonym, group)
            if vocab is not None and len(word) == 1 and _HAN.fullmatch(word):
                # a one-character Chinese word (退 → 退款, 退费); a digit or letter
                # completes to nothing a person meant (0 → 00001 …)
                for longer in vocab.with_prefix(word, limit=p.prefix_words):
                    add(longer, p.prefix, group)
            group += 1
        for window, fixed in fixes:
            owner = fix_group.get(window)
            if owner is None:
                owner = fix_group[window] = group
                group += 1
            add(fixed, p.typo, owner)
            for alt in sorted(self.lexicon.expand(fixed) - {fixed}):
                add(alt, p.typo * p.synonym, owner)
        for matched, meanings in self.lexicon.phrase_meanings(folded):
            # the phrase's own words already count (jieba cut them); the meanings join
            # the group of the first of them, or form a group of their own
            owner = next((seen[w].group for w in self.segmenter.query_words(matched, stops) if w in seen), None)
            if owner is None:
                owner = group
                group += 1
            for meaning in meanings:
                for part in self._cut_meaning(meaning):
                    add(part, p.phrase, owner)
        plan.highlight = [w.word for w in plan.words]
        plan.empty = not plan.words
        return plan

    def _cut_meaning(self, meaning: str) -> list[str]:
        """A meaning is one index word when the dictionary keeps it whole, else its words."""
        if self.segmenter.known(meaning):
            return [meaning]
        return self.segmenter.query_words(meaning, self.lexicon.stop_words) or [meaning]

    def _known_in(self, vocab: Vocabulary) -> Callable[[str], bool]:
        def known(window: str) -> bool:
            return vocab.df("head", window) > 0 or vocab.df("body", window) > 0
        return known

    # -- retrieving and ranking -------------------------------------------------------
    def build_query(self, plan: Plan, vocab: Vocabulary) -> Query:
        p = self.params
        present = [w for w in plan.words if vocab.df("head", w.word) or vocab.df("body", w.word)]
        if len(present) > p.max_terms:
            # a long utterance: every group's strongest word, then the strongest others
            # (each word costs two posting lists; weak alternatives add little)
            by_value = sorted(present, key=lambda w: -w.weight * vocab.idf(w.word))
            keep: list[QueryWord] = []
            groups: set[int] = set()
            for w in by_value:
                if w.group not in groups:
                    groups.add(w.group)
                    keep.append(w)
            keep += [w for w in by_value if w not in keep][: max(0, p.max_terms - len(keep))]
            present = keep[: max(p.max_terms, len(groups))]
        by_rarity = sorted(present, key=lambda w: vocab.df("body", w.word))
        keep_body: set[str] = set()
        spent = 0
        for w in by_rarity:
            df = vocab.df("body", w.word)
            if keep_body and (df > p.common_share * vocab.docs or spent + df > p.body_budget):
                break
            keep_body.add(w.word)
            spent += df
        clauses: list[Query] = []
        for w in present:
            clauses.append(Term("head", w.word, boost=p.head * w.weight))
            if w.word in keep_body:
                clauses.append(Term("body", w.word, boost=p.body * w.weight))
        query = Or(clauses)
        # a handful of lists: a tree of union matchers with block-max skipping; more
        # (a long utterance, synonyms): whoosh's array union, which reads each posting
        # once instead of walking it up a tree of Python matchers (at 20,000 articles
        # p99 59 ms against 248 ms for the utterances of the relevance set)
        query.matcher_type = Or.ARRAY_MATCHER if len(clauses) > p.tree_clauses else Or.DEFAULT_MATCHER
        return query

    def rank(self, plan: Plan, candidates: list[Candidate], vocab: Vocabulary) -> list[Ranked]:
        p = self.params
        group_of = {w.word: w.group for w in plan.words}
        group_idf: dict[int, float] = {}
        for w in plan.words:
            group_idf[w.group] = max(group_idf.get(w.group, 0.0), vocab.idf(w.word) * w.weight)
        total_idf = sum(group_idf.values()) or 1.0
        known_groups = {g for g, v in group_idf.items() if v > 0}
        ranked: list[Ranked] = []
        matched_groups: dict[int, frozenset[int]] = {}
        for c in candidates:
            # what the article matched, read from its stored text (whoosh's own term
            # tracking costs a Python call per posting of every matching document)
            head_text = fold(" ".join((c.fields.get("title", ""), c.fields.get("keywords", ""),
                                       c.fields.get("category", ""))))
            body_text = fold(c.fields.get("body_text", "")[:20_000])
            head_groups: dict[int, float] = {}
            body_groups: dict[int, float] = {}
            strong_head: set[int] = set()
            for w in plan.words:
                value = vocab.idf(w.word) * w.weight * (0.5 if len(w.word) == 1 else 1.0)
                if not value:
                    continue
                if w.word in head_text:
                    head_groups[w.group] = max(head_groups.get(w.group, 0.0), value)
                    # a completion of a one-character word (人 → 人才) is no evidence of its own
                    if len(w.word) > 1 and w.weight > p.prefix:
                        strong_head.add(w.group)
                elif w.word in body_text:
                    body_groups[w.group] = max(body_groups.get(w.group, 0.0), value)
            matched = {g: max(head_groups.get(g, 0.0), body_groups.get(g, 0.0)) for g in {*head_groups, *body_groups}}
            coverage = sum(matched.values()) / total_idf
            title_words = set((c.fields.get("title_words") or "").split())
            title_groups = {group_of[w] for w in title_words if w in group_of}
            title_share = sum(group_idf.get(g, 0.0) for g in title_groups) / total_idf
            evidence = sum(head_groups.values()) + 0.5 * sum(v for g, v in body_groups.items() if g not in head_groups)
            head_full = bool(known_groups) and strong_head >= known_groups
            score = c.score * (coverage ** p.coverage_power) * (1.0 + p.title_bonus * title_share)
            r = Ranked(c.fields, score, evidence, coverage, head_full)
            matched_groups[id(r.fields)] = frozenset(matched)
            ranked.append(r)
        ranked.sort(key=lambda r: -r.score)
        return self._diversify(ranked, matched_groups)

    def _diversify(self, ranked: list[Ranked], candidates_groups: dict[int, frozenset[int]]) -> list[Ranked]:
        """Greedy re-ordering of the head of the list: an article in a category already
        shown that adds no group the shown articles did not cover has its score cut by
        ``diversity``."""
        p = self.params
        if p.diversity <= 0 or len(ranked) < 3:
            return ranked
        pool = list(ranked[: p.candidates])
        out: list[Ranked] = []
        covered: set[int] = set()
        categories: set[str] = set()
        def adjusted(r: Ranked) -> float:
            groups = candidates_groups.get(id(r.fields), frozenset())
            stale = bool(out) and groups <= covered and r.fields.get("category") in categories
            return r.score * (1 - p.diversity) if stale else r.score

        while pool:
            best = max(pool, key=adjusted)
            pool.remove(best)
            out.append(best)
            covered |= candidates_groups.get(id(best.fields), frozenset())
            categories.add(best.fields.get("category", ""))
            if len(out) >= 10:
                break
        return out + [r for r in ranked if r not in out]

    def _relevant(self, plan: Plan, ranked: list[Ranked]) -> bool:
        """The relevance floor: one of the best articles carries enough evidence (idf of
        the words it matched, titles and keywords counting fully, bodies half), or
        matched everything the person said in its title or keywords. A one-character
        query is exempt (it is answered with a notice instead)."""
        if not ranked:
            return False
        if plan.chars <= 1:
            return True
        floor = min(self.params.floor, self.params.floor_share * self._max_idf)
        return any(r.evidence >= floor or r.head_full for r in ranked[:3])

    def search(self, index: KbIndex, text: str, *, filter: Query | None, page: int,
               pagelen: int) -> tuple[Plan, int, bool, list[Ranked], list[Ranked]]:
        """``(plan, total, exact, hits of the page, suggestions)``; suggestions are the
        best articles below the floor when nothing relevant was found. The whole search
        reads one index generation (a commit meanwhile does not close it)."""
        index.remember_filter(filter)
        with index.reading() as gen:
            return self._search(gen, text, filter=filter, page=page, pagelen=pagelen)

    def alternatives(self, index: KbIndex, text: str, *, limit: int = 5) -> list[str]:
        """What the person may have meant when nothing relevant was found: known words
        that sound like a window of the text (a homophone typo) and words typed in
        pinyin (``gongjijin`` → 公积金), the ones found in more articles first."""
        folded = fold(unicodedata.normalize("NFKC", text or "")).strip()
        if not folded:
            return []
        with index.reading() as gen:
            vocab = gen.vocab

            def articles(word: str) -> int:
                return max(vocab.df("head", word), vocab.df("body", word))

            stops = frozenset(w for w in self.lexicon.stop_words if len(w) == 1)
            found = [word for _, word in self.pinyin.corrections(folded, self._known_in(vocab), stops)]
            for letters in _LATIN.findall(folded):
                found += sorted(self.pinyin.spelled(letters), key=lambda w: -articles(w))
            out = [w for w in dict.fromkeys(found) if articles(w) > 0]
        return out[:limit]

    def _search(self, gen: Generation, text: str, *, filter: Query | None, page: int,
                pagelen: int) -> tuple[Plan, int, bool, list[Ranked], list[Ranked]]:
        vocab = gen.vocab
        plan = self.plan(text, vocab)
        if not text.strip():
            total, exact, cands = candidates(gen, None, filter=filter, limit=page * pagelen)
            hits = [Ranked(c.fields, 0.0, 0.0, 0.0) for c in cands]
            return plan, total, exact, hits[(page - 1) * pagelen: page * pagelen], []
        if plan.empty:
            return plan, 0, True, [], []
        limit = max(self.params.candidates, page * pagelen)
        total, exact, cands = candidates(gen, self.build_query(plan, vocab), filter=filter, limit=limit)
        if not exact:
            # an estimate without a counting pass: at least the most frequent word's articles
            total = max([total, *(max(vocab.df("head", w.word), vocab.df("body", w.word)) for w in plan.words)])
        ranked = self.rank(plan, cands, vocab)
        self._max_idf = math.log(1 + (vocab.docs - 0.5) / 1.5)
        if not self._relevant(plan, ranked):
            return plan, 0, True, [], ranked[:3]
        return plan, total, exact, ranked[(page - 1) * pagelen: page * pagelen], []


def idf_weight(df: int, docs: int) -> float:
    return math.log(1 + (docs - df + 0.5) / (df + 0.5))
