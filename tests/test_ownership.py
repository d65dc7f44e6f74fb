"""One owner per table: every write to ``calls`` and ``seats`` goes through
``hotline/calls/store.py`` (DESIGN.md decision 3a). When six packages wrote ``calls``,
nobody could say which fact won."""

from __future__ import annotations

import re

from hotline.config import PROJECT_ROOT

OWNER = PROJECT_ROOT / "hotline" / "calls" / "store.py"
WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|COPY)\s+(calls|seats)\b", re.I)


def test_only_the_call_store_writes_calls_and_seats() -> None:
    writers = {}
    for path in sorted((PROJECT_ROOT / "hotline").rglob("*.py")):
        found = WRITE.findall(path.read_text(encoding="utf-8"))
        if found:
            writers[str(path.relative_to(PROJECT_ROOT))] = sorted({f"{verb.split()[0].upper()} {table}"
                                                                   for verb, table in found})
    owner = str(OWNER.relative_to(PROJECT_ROOT))
    assert set(writers) == {owner}, writers
    # and the owner really holds the writes the others call (the pattern sees them)
    assert {"INSERT calls", "UPDATE calls", "INSERT seats", "UPDATE seats"} <= set(writers[owner])
