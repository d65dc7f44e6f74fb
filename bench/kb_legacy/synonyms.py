"""Synonym groups: ``config/kb_synonyms.yaml`` plus the groups editors keep in
PostgreSQL (``kb_synonyms``), expanded at query time so edits need no reindex."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from hotline.errors import ConfigError, ValidationError
from kb_legacy.text import fold


def load_file(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}", field="kb.synonyms_path") from None
    groups = raw.get("groups") if isinstance(raw, dict) else None
    if not isinstance(groups, list):
        raise ConfigError(f"{path}: expected a 'groups:' list of word lists", field="kb.synonyms_path")
    return [clean_group(g, where=f"{path} group {i + 1}") for i, g in enumerate(groups)]


def clean_group(group: Any, *, where: str = "terms") -> list[str]:
    if not isinstance(group, list):
        raise ValidationError(f"{where}: a synonym group is a list of words", field="terms")
    terms: list[str] = []
    for term in group:
        word = fold(str(term)).strip()
        if word and word not in terms:
            terms.append(word)
    if not 2 <= len(terms) <= 20 or any(len(t) > 32 for t in terms):
        raise ValidationError(f"{where}: a group has 2 to 20 distinct words of at most 32 characters",
                              field="terms", value=group)
    return terms


async def load_db(conn: asyncpg.Connection | asyncpg.Pool) -> list[list[str]]:
    rows = await conn.fetch("SELECT terms FROM kb_synonyms ORDER BY id")
    return [list(r["terms"]) for r in rows]


class Synonyms:
    """Term → alternatives (the term included) over all groups."""

    def __init__(self, groups: Iterable[list[str]] = ()) -> None:
        self.groups = [list(g) for g in groups]
        self._map: dict[str, set[str]] = {}
        for group in self.groups:
            for term in group:
                self._map.setdefault(term, set()).update(group)

    def expand(self, term: str) -> set[str]:
        return self._map.get(term, {term}) | {term}

    def phrases_in(self, folded_text: str) -> list[set[str]]:
        """Groups whose words appear in the text as substrings (catches multi-word
        terms jieba splits, e.g. 住房公积金 → 住房 + 公积金)."""
        found = []
        for group in self.groups:
            if any(len(t) >= 2 and t in folded_text for t in group):
                found.append(set(group))
        return found

    def words(self) -> set[str]:
        return set(self._map)
