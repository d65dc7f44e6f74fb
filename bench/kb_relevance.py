"""Relevance of the knowledge-base search on tests/kb/relevance.yaml, without a database:
the seed articles (knowledge_base/) are cut and indexed in a temporary directory with
the seed lexicon, and every utterance is searched the way the engine searches.

    .venv/bin/python bench/kb_relevance.py            # recall@1, recall@5, MRR per part
    .venv/bin/python bench/kb_relevance.py --misses   # and the misses
    .venv/bin/python bench/kb_relevance.py --tune     # grid search on the tuning part only

The held-out part never enters --tune; docs/KNOWLEDGE_BASE.md reports both parts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.kb.importer import read_path  # noqa: E402
from hotline.kb.index import KbIndex, day_number, document  # noqa: E402
from hotline.kb.lexicon import load_files  # noqa: E402
from hotline.kb.model import validate_content  # noqa: E402
from hotline.kb.query import Ranker, RankParams  # noqa: E402
from hotline.kb.text import Segmenter  # noqa: E402

RELEVANCE = ROOT / "tests" / "kb" / "relevance.yaml"
NONSENSE = ROOT / "tests" / "kb" / "nonsense.yaml"
TODAY = dt.date(2026, 11, 30)


def seed_rows() -> list[dict[str, Any]]:
    items, problems = read_path(ROOT / "knowledge_base")
    assert not problems, problems
    now = dt.datetime.now(dt.UTC)
    rows = []
    for it in items:
        d = dict(it.data)
        clean, probs = validate_content(d, units={str(d["unit_code"]): "x"},
                                        hotlines=[str(h) for h in d["hotlines"]])
        assert not probs, probs
        row = dict(clean, id=d["id"], state="published", version=1, updated_at=now)
        row["valid_from"] = row["valid_from"] or dt.date(2020, 1, 1)
        rows.append(row)
    return rows


def build(params: RankParams | None = None, lexicon_dir: Path | None = None) -> tuple[Ranker, KbIndex, set[str]]:
    lex_dir = lexicon_dir or ROOT / "knowledge_base" / "lexicon"
    lexicon = load_files(dictionary=lex_dir / "dictionary.txt", stop_words=lex_dir / "stopwords.txt",
                         synonyms=ROOT / "config" / "kb_synonyms.yaml")
    segmenter = Segmenter(lexicon.words, cache_dir=Path(tempfile.gettempdir()) / "kb-relevance-cache")
    rows = seed_rows()
    index = KbIndex(Path(tempfile.mkdtemp(prefix="kb-relevance-")))
    index.open()
    index.write([document(r, segmenter) for r in rows], (), cursor="0-0", instance="bench",
                dictionary=segmenter.fingerprint, clear=True)
    live = {r["id"] for r in rows if day_number(r["valid_from"]) <= day_number(TODAY)
            and (r["valid_to"] is None or r["valid_to"] >= TODAY)}
    ranker = Ranker(lexicon, segmenter, params)
    ranker.pinyin.add(w for w in index.head_terms() if 2 <= len(w) <= 5)
    return ranker, index, live


def run(ranker: Ranker, index: KbIndex, live: set[str], cases: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int | None, list[str]]]:
    out = []
    for case in cases:
        _, _, _, hits, _ = ranker.search(index, case["question"], filter=None, page=1, pagelen=10)
        top = [h.fields["id"] for h in hits if h.fields["id"] in live][:10]
        rank = next((i + 1 for i, t in enumerate(top) if t in case["expected"]), None)
        if case.get("both") and not set(case["expected"]) <= set(top[:5]):
            rank = rank if rank and rank > 5 else None if rank is None else 6  # both topics in the top 5, or a miss at 5
        out.append((case, rank, top))
    return out


def figures(results: list[tuple[dict[str, Any], int | None, list[str]]]) -> dict[str, float]:
    n = len(results) or 1
    return {"n": len(results),
            "r1": sum(1 for _, r, _ in results if r == 1) / n,
            "r5": sum(1 for _, r, _ in results if r and r <= 5) / n,
            "mrr": sum(1 / r for _, r, _ in results if r) / n}


def table(results: list[tuple[dict[str, Any], int | None, list[str]]]) -> list[str]:
    lines = ["| part | utterances | recall@1 | recall@5 | MRR |", "|---|---:|---:|---:|---:|"]
    for part in ("tuning", "held-out", None):
        for para in (False, True):
            sel = [x for x in results if (part is None or x[0]["part"] == part) and (not para or x[0]["paraphrase"])]
            f = figures(sel)
            name = (part or "all") + (" — paraphrase-only" if para else "")
            lines.append(f"| {name} | {f['n']} | {f['r1']:.3f} | {f['r5']:.3f} | {f['mrr']:.3f} |")
    return lines


def nonsense_refused(ranker: Ranker, index: KbIndex) -> tuple[int, int]:
    items = yaml.safe_load(NONSENSE.read_text(encoding="utf-8")) if NONSENSE.exists() else []
    refused = sum(1 for q in items if not ranker.search(index, q, filter=None, page=1, pagelen=5)[3])
    return refused, len(items)


def tune(cases: list[dict[str, Any]]) -> RankParams:
    tuning = [c for c in cases if c["part"] == "tuning"]
    ranker, index, live = build()
    grid = {"head": [1.0, 2.0, 3.0], "body": [0.5, 1.0], "coverage_power": [0.5, 1.0, 1.5],
            "title_bonus": [0.0, 0.3], "synonym": [0.6, 0.9], "phrase": [0.8, 1.2]}
    best: tuple[float, RankParams] | None = None
    base = ranker.params
    for values in itertools.product(*grid.values()):
        params = dataclasses.replace(base, **dict(zip(grid, values, strict=True)))
        ranker.params = params
        f = figures(run(ranker, index, live, tuning))
        para = figures(run(ranker, index, live, [c for c in tuning if c["paraphrase"]]))
        refused, total = nonsense_refused(ranker, index)
        objective = f["mrr"] + f["r5"] + para["r5"] + refused / max(1, total)
        if best is None or objective > best[0]:
            best = (objective, params)
            print(f"{objective:.4f} r5={f['r5']:.3f} para_r5={para['r5']:.3f} mrr={f['mrr']:.3f} "
                  f"{dict(zip(grid, values, strict=True))}", flush=True)
    assert best is not None
    return best[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--tune", action="store_true")
    args = ap.parse_args()
    cases = yaml.safe_load(RELEVANCE.read_text(encoding="utf-8"))
    if args.tune:
        print(tune(cases))
        return
    ranker, index, live = build()
    results = run(ranker, index, live, cases)
    print("\n".join(table(results)))
    refused, total = nonsense_refused(ranker, index)
    print(f"nonsense refused: {refused}/{total}")
    if args.misses:
        for case, rank, top in results:
            if not rank or rank > 5:
                print(f"MISS [{case['part']}{' P' if case['paraphrase'] else ''}] {case['question']} "
                      f"→ {top[:5]} (expected {case['expected']})")


if __name__ == "__main__":
    main()
