"""The colloquial-language layer as data: the domain dictionary (words jieba must keep
whole), stop words (fillers that carry no meaning in a citizen's question), synonym
groups (every word of a group finds the others) and colloquial phrases (many-to-one:
the ways people say a thing → the words the articles use).

Two sources, merged: the seed files shipped with the knowledge base
(``knowledge_base/lexicon/dictionary.txt``, ``stopwords.txt``, and
``config/kb_synonyms.yaml`` with ``groups:`` and ``phrases:``), and the entries
knowledge editors add from the console (``kb_lexicon``, reviewed like articles; only
published entries count). Every node reloads the published entries when the change
log says one changed; a dictionary change rebuilds the node's index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from hotline.errors import ConfigError, ValidationError
from hotline.kb.text import fold

KINDS = ("word", "stopword", "synonym", "phrase")
KIND_NAMES_ZH = {"word": "词典词", "stopword": "停用词", "synonym": "同义词组", "phrase": "口语说法"}
#: ``*`` in a phrase: up to this many characters of anything in between (不退*押金)
GAP_CHARS = 8


@dataclass(frozen=True, slots=True)
class Phrase:
    """Ways of saying (``say``, substrings of the folded text; ``*`` is a short gap)
    → what they mean (``means``, words the articles use)."""

    say: tuple[str, ...]
    means: tuple[str, ...]
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile("(?!)"))

    @classmethod
    def build(cls, say: Iterable[str], means: Iterable[str]) -> Phrase:
        say_t = tuple(dict.fromkeys(s for s in (fold(x).strip() for x in say) if s))
        means_t = tuple(dict.fromkeys(m for m in (fold(x).strip() for x in means) if m))
        alts = ["".join(re.escape(part) if part != "*" else f".{{0,{GAP_CHARS}}}?"
                        for part in re.split(r"(\*)", s)) for s in say_t]
        return cls(say_t, means_t, re.compile("|".join(alts)) if alts else re.compile("(?!)"))


@dataclass(slots=True)
class Lexicon:
    words: tuple[str, ...] = ()
    stop_words: frozenset[str] = frozenset()
    groups: list[tuple[str, ...]] = field(default_factory=list)
    phrases: list[Phrase] = field(default_factory=list)
    _map: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._map = {}
        for group in self.groups:
            for term in group:
                self._map.setdefault(term, set()).update(group)

    def expand(self, term: str) -> set[str]:
        """The term and its synonyms."""
        return self._map.get(term, set()) | {term}

    def phrase_meanings(self, folded_text: str) -> list[tuple[str, tuple[str, ...]]]:
        """``(matched text, meanings)`` of every colloquial phrase and multi-character
        synonym found in the text as a substring (catches what jieba cuts apart)."""
        found: list[tuple[str, tuple[str, ...]]] = []
        for phrase in self.phrases:
            match = phrase.pattern.search(folded_text)
            if match and match.group(0):
                found.append((match.group(0), phrase.means))
        for group in self.groups:
            hit = next((t for t in group if len(t) >= 2 and t in folded_text), None)
            if hit is not None:
                found.append((hit, group))
        return found

    @classmethod
    def merge(cls, *parts: Lexicon) -> Lexicon:
        return cls(
            words=tuple(dict.fromkeys(w for p in parts for w in p.words)),
            stop_words=frozenset().union(*(p.stop_words for p in parts)),
            groups=[g for p in parts for g in p.groups],
            phrases=[ph for p in parts for ph in p.phrases],
        )


# --- the seed files --------------------------------------------------------------------

def _word_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        words.extend(fold(w) for w in line.split())
    return words


def load_files(*, dictionary: Path, stop_words: Path, synonyms: Path) -> Lexicon:
    """The lexicon of the seed files (a bad file is a :class:`ConfigError` naming it)."""
    groups: list[tuple[str, ...]] = []
    phrases: list[Phrase] = []
    if synonyms.exists():
        try:
            raw = yaml.safe_load(synonyms.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{synonyms}: {exc}", field="kb.synonyms_path") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("groups", []), list) \
                or not isinstance(raw.get("phrases", []), list):
            raise ConfigError(f"{synonyms}: expected 'groups:' (word lists) and 'phrases:' (say/means)",
                              field="kb.synonyms_path")
        for i, group in enumerate(raw.get("groups") or []):
            groups.append(tuple(clean_group(group, where=f"{synonyms} group {i + 1}")))
        for i, item in enumerate(raw.get("phrases") or []):
            where = f"{synonyms} phrase {i + 1}"
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: expected say: [...] and means: [...]", field="kb.synonyms_path")
            say, means = clean_phrase(item.get("say"), item.get("means"), where=where)
            phrases.append(Phrase.build(say, means))
    return Lexicon(words=tuple(dict.fromkeys(_word_lines(dictionary))),
                   stop_words=frozenset(_word_lines(stop_words)), groups=groups, phrases=phrases)


# --- validation (shared by the files and the console) ----------------------------------------

def _clean_terms(values: Any, *, field_name: str, where: str, low: int, high: int, max_len: int = 32) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise ValidationError(f"{where}: {field_name} 必须是词语列表", field=field_name, value=values)
    terms: list[str] = []
    for value in values:
        word = fold(str(value)).strip()
        if word and word not in terms:
            terms.append(word)
    if not low <= len(terms) <= high or any(len(t) > max_len for t in terms):
        raise ValidationError(f"{where}: {field_name} 需要 {low} 到 {high} 个不同的词，每个不超过 {max_len} 字",
                              field=field_name, value=values)
    return terms


def clean_group(group: Any, *, where: str = "terms") -> list[str]:
    return _clean_terms(group, field_name="terms", where=where, low=2, high=20)


def clean_phrase(say: Any, means: Any, *, where: str = "phrase") -> tuple[list[str], list[str]]:
    return (_clean_terms(say, field_name="terms", where=where, low=1, high=20),
            _clean_terms(means, field_name="means", where=where, low=1, high=10))


def clean_entry(kind: Any, terms: Any, means: Any = None) -> tuple[str, list[str], list[str]]:
    """A console entry checked and normalised: ``(kind, terms, means)``."""
    if kind not in KINDS:
        raise ValidationError("kind 必须是：" + "、".join(f"{k}（{KIND_NAMES_ZH[k]}）" for k in KINDS),
                              field="kind", value=kind)
    if kind == "synonym":
        return kind, clean_group(terms, where="同义词组"), []
    if kind == "phrase":
        say, meaning = clean_phrase(terms, means, where="口语说法")
        return kind, say, meaning
    words = _clean_terms(terms, field_name="terms", where=KIND_NAMES_ZH[kind], low=1, high=1,
                         max_len=16 if kind == "word" else 8)
    if kind == "word" and (len(words[0]) < 2 or re.search(r"\s", words[0])):
        raise ValidationError("词典词至少两个字、不含空格", field="terms", value=terms)
    return kind, words, []


# --- the console's entries ---------------------------------------------------------------------

def from_rows(rows: Sequence[Mapping[str, Any]]) -> Lexicon:
    """The lexicon of published ``kb_lexicon`` rows."""
    words: list[str] = []
    stops: set[str] = set()
    groups: list[tuple[str, ...]] = []
    phrases: list[Phrase] = []
    for r in rows:
        terms = list(r["terms"])
        if r["kind"] == "word":
            words.extend(terms)
        elif r["kind"] == "stopword":
            stops.update(terms)
        elif r["kind"] == "synonym":
            groups.append(tuple(terms))
        elif r["kind"] == "phrase":
            phrases.append(Phrase.build(terms, r["means"]))
    return Lexicon(words=tuple(dict.fromkeys(words)), stop_words=frozenset(stops), groups=groups, phrases=phrases)


async def load_published(db: asyncpg.Pool | asyncpg.Connection) -> Lexicon:
    rows = await db.fetch("SELECT kind, terms, means FROM kb_lexicon WHERE state = 'published' ORDER BY id")
    return from_rows(rows)
