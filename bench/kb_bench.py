"""Knowledge-base benchmark (not a test): prints figures for BENCHMARKS.md and
docs/bench/kb.md.

With the seed articles plus synthetic ones (50,000 in all by default) in a private
embedded PostgreSQL, side by side in one run:

* **engine**: today's engine (hotline/kb: lexicon, pre-cut words, coverage ranking,
  diversity, floor, snippets);
* **legacy**: the engine before issue 14 (bench/kb_legacy, commit 8dab08e: analyser
  inside whoosh, synonym groups, title-weighted BM25F), on its own index of the same
  rows;
* **ILIKE**: ``ILIKE '%…%'`` over PostgreSQL, the naive baseline.

Figures: full index rebuild time; query latency p50/p99 for 1-, 2- and 4-word
keyword queries and for the colloquial utterances of tests/kb/relevance.yaml;
publish → searchable on another node (two engines, two index directories, one
database; LISTEN/NOTIFY wake-up plus change_log catch-up); recall@1/@5 and MRR of the
relevance set on the full corpus (a synthetic variant of an expected article counts).

    .venv/bin/python bench/kb_bench.py [--articles 50000] [--queries 300] [--procs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # kb_legacy

from hotline.auth import create_user  # noqa: E402
from hotline.config import PROJECT_ROOT, load_settings  # noqa: E402
from hotline.db import Database  # noqa: E402
from hotline.db.embedded import EmbeddedPostgres  # noqa: E402
from hotline.db.migrations import migrate  # noqa: E402
from hotline.db.pool import connect, create_pool  # noqa: E402
from hotline.kb import articles  # noqa: E402
from hotline.kb.changes import record_articles  # noqa: E402
from hotline.kb.engine import KnowledgeBase, SearchRequest  # noqa: E402
from hotline.kb.importer import import_path  # noqa: E402
from hotline.registry import load_registry, sync_registry  # noqa: E402
from hotline.runtime import Runtime  # noqa: E402

SEED = PROJECT_ROOT / "knowledge_base"
RELEVANCE = PROJECT_ROOT / "tests" / "kb" / "relevance.yaml"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the indexing processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:6.1f} ms  p99 {pct(values, 99) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"


async def synthesise(pool, total: int, rng: random.Random) -> int:
    """Synthetic articles as a large knowledge base has them: variants of each seed
    matter (per district, year, situation) — the seed article's own sentences
    shuffled and thinned, plus one to three sentences from other articles — with
    unique titles. Real Chinese text; every seed topic has ~300 near-duplicates, so
    the corpus is harder than a real one for both speed (long posting lists) and
    relevance (look-alike distractors)."""
    seed = await pool.fetch("SELECT id, title, category, unit_code, material_type, hotlines, keywords, body "
                            "FROM kb_articles")
    split = [[s.strip() for s in r["body"].replace("\n", "。").split("。") if len(s.strip()) > 4] for r in seed]
    sentences = [s for group in split for s in group if len(s) > 8]
    places = ["定海区", "普陀区", "岱山县", "嵊泗县", "新城", "本市", "各区县", "海岛乡镇"]
    situations = ["2024年版", "2025年版", "常见问题", "办理要点", "情形说明", "答复口径", "补充说明", "政策解读"]
    need = total - len(seed)
    if need <= 0:
        return 0
    rows = []
    for i in range(need):
        k = rng.randrange(len(seed))
        base, own = seed[k], split[k]
        kept = [s for s in own if rng.random() < 0.8] or own[:1]
        rng.shuffle(kept)
        kept += rng.sample(sentences, k=rng.randint(1, 3))
        body = "。".join(kept) + "。"
        title = f"{base['title'][:40]}（{rng.choice(places)}{rng.choice(situations)}{i:05d}）"
        rows.append((f"{base['id']}-v{i:05d}", title, base["category"], base["unit_code"], base["material_type"],
                     list(base["hotlines"]), list(base["keywords"])[:3], body))
    async with pool.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(
            "kb_articles", records=rows,
            columns=["id", "title", "category", "unit_code", "material_type", "hotlines", "keywords", "body"])
        await conn.execute("UPDATE kb_articles SET state = 'published', valid_from = '2024-01-01' "
                           "WHERE id ~ '-v[0-9]{5}$'")
        await record_articles(conn, [rows[0][0]])
    return need


def build_queries(words: list[str], n: int, rng: random.Random) -> list[tuple[int, str]]:
    out = []
    for i in range(n):
        size = (1, 2, 4)[i % 3]
        out.append((size, "".join(rng.sample(words, size)) if size == 1 else " ".join(rng.sample(words, size))))
    return out


async def ilike(pool, text: str) -> list[str]:
    words = text.split() or [text]
    patterns = ["%" + w.replace("%", r"\%").replace("_", r"\_") + "%" for w in words]
    rows = await pool.fetch(
        """SELECT id FROM kb_articles
            WHERE state = 'published' AND valid_from <= current_date AND (valid_to IS NULL OR valid_to >= current_date)
              AND (SELECT bool_and(title ILIKE p OR body ILIKE p) FROM unnest($1::text[]) AS p)
            ORDER BY updated_at DESC LIMIT 10""", patterns)
    return [r["id"] for r in rows]


def relevance_cases() -> list[dict]:
    return yaml.safe_load(RELEVANCE.read_text(encoding="utf-8")) or []


def figures(ranks: list[int | None]) -> str:
    n = len(ranks) or 1
    r1 = sum(1 for r in ranks if r == 1) / n
    r5 = sum(1 for r in ranks if r and r <= 5) / n
    mrr = sum(1 / r for r in ranks if r) / n
    return f"recall@1 {r1:.3f}  recall@5 {r5:.3f}  MRR {mrr:.3f}  (n={len(ranks)})"


def rank_of(found: list[str], expected: list[str]) -> int | None:
    # a synthetic variant of an expected article (``<id>-vNNNNN``) answers it too
    return next((i + 1 for i, f in enumerate(found) if f.split("-v")[0] in expected), None)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--publishes", type=int, default=20)
    parser.add_argument("--no-legacy", action="store_true", help="skip the engine before issue 14")
    parser.add_argument("--publish-only", action="store_true", help="skip the query latency and relevance part")
    args = parser.parse_args()
    rng = random.Random(12345)
    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    embedded = EmbeddedPostgres(work)
    await embedded.start()
    url = await embedded.ensure_database()
    settings = load_settings(env={"HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": str(work / "node-a")})
    registry = load_registry(PROJECT_ROOT / "config" / "hotlines.yaml")
    conn = await connect(url)
    await migrate(conn, PROJECT_ROOT / "migrations")
    await sync_registry(conn, registry)
    await conn.close()
    pool_a = await create_pool(url, settings, min_size=2, max_size=8)
    settings_b = replace(settings, data_dir=work / "node-b")
    pool_b = await create_pool(url, settings_b, min_size=1, max_size=4)
    node_a = Runtime(settings, registry, Database(pool=pool_a, url=url))
    node_b = Runtime(settings_b, registry, Database(pool=pool_b, url=url))
    legacy = None
    try:
        report = await import_path(pool_a, SEED)
        print(f"seed: {len(report.created)} articles imported ({report.bad_rows} bad rows) from {SEED}")
        kb = KnowledgeBase(node_a)
        await kb.open()
        added = await synthesise(pool_a, args.articles, rng)
        total = await pool_a.fetchval("SELECT count(*) FROM kb_articles")
        chars = await pool_a.fetchval("SELECT sum(char_length(body)) FROM kb_articles")
        print(f"corpus: {total} articles ({added} synthetic), {chars / 1e6:.1f} M characters of body text")

        cpu0 = _cpu()
        started = time.perf_counter()
        count = await kb.rebuild("benchmark", procs=args.procs)
        rebuild = time.perf_counter() - started
        size = sum(f.stat().st_size for f in kb.index.path.iterdir()) / 1e6
        print(f"engine: full rebuild {count} articles in {rebuild:.1f} s wall with {args.procs} process(es) "
              f"({_cpu() - cpu0:.1f} s CPU); index {size:.0f} MB")
        if not args.no_legacy:
            from kb_legacy import LegacyEngine

            legacy = LegacyEngine(work / "legacy-index", work / "legacy-cache", PROJECT_ROOT / "config" / "kb_synonyms.yaml")
            rows = await pool_a.fetch(f"SELECT {articles.ARTICLE_COLUMNS} FROM kb_articles")  # noqa: S608
            cpu0 = _cpu()
            started = time.perf_counter()
            count = await asyncio.to_thread(legacy.rebuild, rows, procs=args.procs)
            print(f"legacy: full rebuild {count} articles in {time.perf_counter() - started:.1f} s wall "
                  f"({_cpu() - cpu0:.1f} s CPU)")
            del rows

        node_b_kb = KnowledgeBase(node_b)
        started = time.perf_counter()
        shutil.copytree(kb.index.path, node_b_kb.index.path)  # a second node starting from a copied index
        await node_b_kb.open()
        print(f"second node start from a copied index (check + catch-up): {time.perf_counter() - started:.1f} s, "
              f"rebuilds {node_b_kb.stats.rebuilds}")

        assert kb.segmenter is not None
        words = sorted({w for r in await pool_a.fetch("SELECT keywords FROM kb_articles WHERE id !~ '-v[0-9]{5}$'")
                        for k in r["keywords"] for w in kb.segmenter.query_words(k, kb.lexicon.stop_words)
                        if len(w) >= 2})
        queries = build_queries(words, args.queries, rng)
        cases = relevance_cases()
        utterances = [(0, c["question"]) for c in cases]
        legacy_filter = KnowledgeBase._filter(SearchRequest(today=dt.date.today()))
        for _, text in queries[:20]:  # warm up searchers and caches
            await kb.search(SearchRequest(text=text))
            if legacy:
                legacy.search(text, filter=legacy_filter)
            await ilike(pool_a, text)
        engine_times: dict[int, list[float]] = {0: [], 1: [], 2: [], 4: []}
        legacy_times: dict[int, list[float]] = {0: [], 1: [], 2: [], 4: []}
        ilike_times: dict[int, list[float]] = {0: [], 1: [], 2: [], 4: []}
        engine_ranks: list[int | None] = []
        legacy_ranks: list[int | None] = []
        for i, (size, text) in enumerate([] if args.publish_only else queries + utterances):
            t0 = time.perf_counter()
            found = [item["id"] for item in (await kb.search(SearchRequest(text=text)))["items"]]
            t1 = time.perf_counter()
            old = legacy.search(text, filter=legacy_filter) if legacy else []
            t2 = time.perf_counter()
            await ilike(pool_a, text)
            t3 = time.perf_counter()
            engine_times[size].append(t1 - t0)
            if legacy:
                legacy_times[size].append(t2 - t1)
            ilike_times[size].append(t3 - t2)
            if size == 0:
                case = cases[i - len(queries)]
                engine_ranks.append(rank_of(found, case["expected"]))
                legacy_ranks.append(rank_of(old, case["expected"]))
        if args.publish_only:
            engine_times = {k: [0.0] for k in engine_times}
            ilike_times = {k: [0.0] for k in ilike_times}
            engine_ranks = legacy_ranks = [None] * len(cases)
        print(f"query latency ({len(queries)} keyword queries, {len(utterances)} colloquial utterances); "
              "engine | legacy | ILIKE:")
        names = {1: "1-word", 2: "2-word", 4: "4-word", 0: "utterances"}
        for size in (1, 2, 4, 0):
            print(f"  {names[size]:<10} engine {ms(engine_times[size])}")
            if legacy:
                print(f"  {'':<10} legacy {ms(legacy_times[size])}")
            print(f"  {'':<10} ILIKE  {ms(ilike_times[size])}")
        keyword = (1, 2, 4)
        print(f"  all keyword engine {ms([t for k in keyword for t in engine_times[k]])}")
        if legacy:
            print(f"  all keyword legacy {ms([t for k in keyword for t in legacy_times[k]])}")
        print(f"  all keyword ILIKE  {ms([t for k in keyword for t in ilike_times[k]])}")
        print(f"relevance on the {total}-article corpus (all {len(cases)} utterances):")
        print(f"  engine {figures(engine_ranks)}")
        held = [r for r, c in zip(engine_ranks, cases, strict=True) if c["part"] == "held-out"]
        print(f"  engine, held-out part {figures(held)}")
        if legacy:
            print(f"  legacy {figures(legacy_ranks)}")

        admin = await create_user(pool_a, "bench-admin", "correct-horse-battery", ["admin"])
        delays = []
        for i in range(args.publishes):
            row = await articles.create_article(pool_a, admin, {
                "title": f"基准测试发布条目{i}", "category": "测试/发布", "unit_code": "hrss",
                "material_type": "日常咨询", "hotlines": ["12333"], "keywords": [f"基准词{i}"],
                "body": f"这是第{i}条用于测量发布到可检索延迟的知识，独特词语：鹦鹉螺{i}号。"})
            await articles.transition(pool_a, admin, row["id"], "submit")
            t0 = time.perf_counter()
            await articles.transition(pool_a, admin, row["id"], "publish")
            while True:
                # polled every 5 ms: without the nothing-found help (two more queries an
                # agent's one search would make, here hundreds of times per publish)
                found = await node_b_kb.search(SearchRequest(text=f"鹦鹉螺{i}号", per_page=3,
                                                             nothing_found_help=False))
                if any(item["id"] == row["id"] for item in found["items"]):
                    break
                if time.perf_counter() - t0 > 30:
                    raise SystemExit("publish did not reach the other node within 30 s")
                await asyncio.sleep(0.005)
            delays.append(time.perf_counter() - t0)
            print(f"  publish {i}: {delays[-1] * 1000:.0f} ms (node B cursor {node_b_kb.cursor}, "
                  f"syncs {node_b_kb.stats.syncs})", file=sys.stderr, flush=True)
        print(f"publish → searchable on the other node ({len(delays)} publishes): {ms(delays)}")
        await node_b_kb.close()
        await kb.close()
    finally:
        if legacy is not None:
            legacy.index.close()
        await node_a.close()
        await node_b.close()
        await pool_a.close()
        await pool_b.close()
        await embedded.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    # SIGTERM (e.g. `timeout`) unwinds through the finally blocks: the embedded
    # PostgreSQL is stopped and the work directory removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    asyncio.run(main())
