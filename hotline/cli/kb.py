"""``hotline kb import|reindex|status|search|expire``: the knowledge base from the shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from hotline.db import open_database
from hotline.kb.settings import KbSettings
from hotline.runtime import Runtime


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kb", help="knowledge base: import articles, rebuild the search index",
                       description="Import knowledge articles and maintain this node's search index.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import", help="import Markdown (front matter) files, or a CSV/XLSX in the item format",
        description="Import a file or every .md/.csv/.xlsx under a directory. Every bad row is reported by "
        "number and field; nothing is imported from a batch with a bad row unless --partial. Re-importing "
        "updates articles by id (by title for rows without id); unchanged ones are left alone.")
    imp.add_argument("path", help="a .md, .csv or .xlsx file, or a directory (e.g. knowledge_base/)")
    imp.add_argument("--partial", action="store_true", help="import the good rows even if some are bad")
    imp.add_argument("--state", default="published", choices=("draft", "review", "published"),
                     help="state of newly created articles (default: published)")
    imp.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(func=import_)
    rx = actions.add_parser("reindex", help="rebuild this node's search index from the database")
    rx.add_argument("--procs", type=int, default=1, help="indexing processes (default 1)")
    rx.set_defaults(func=reindex)
    actions.add_parser("status", help="compare the index with the database (catching up if behind)").set_defaults(
        func=status)
    se = actions.add_parser("search", help="search like an agent (published, currently valid)")
    se.add_argument("query")
    se.add_argument("--line", help="only articles of this hotline number")
    se.add_argument("--limit", type=int, default=5)
    se.set_defaults(func=search)
    actions.add_parser("expire", help="set published articles whose validity ended to expired").set_defaults(
        func=expire)


async def _runtime(args: argparse.Namespace) -> Runtime:
    from hotline.registry import load_registry

    db = await open_database(args.settings, min_size=1, max_size=4)
    return Runtime(args.settings, load_registry(args.settings.registry_path), db)


async def import_(args: argparse.Namespace) -> int:
    from hotline.kb.importer import import_items, read_path

    path = Path(args.path)
    if not await asyncio.to_thread(path.exists):
        print(f"hotline kb import: {path}: 没有这个文件或目录", file=sys.stderr)
        return 2
    items, problems = await asyncio.to_thread(read_path, path)
    settings = KbSettings.from_settings(args.settings)
    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        if args.dry_run:
            async with db.pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                try:
                    report = await import_items(conn, items, parse_problems=problems, partial=args.partial,
                                                state=args.state, max_items=settings.max_import_items)
                finally:
                    await tx.rollback()
                report.written = False
        else:
            report = await import_items(db.pool, items, parse_problems=problems, partial=args.partial,
                                        state=args.state, max_items=settings.max_import_items)
    finally:
        await db.close()
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        for problem in report.problems:
            print(f"错误 {problem}", file=sys.stderr)
        for warning in report.warnings:
            print(f"提示 {warning}", file=sys.stderr)
        verb = "（试运行，未写入）" if args.dry_run else ""
        if report.problems and not report.written:
            print(f"导入未执行{verb}：{report.total} 条中 {report.bad_rows} 条有错误；改正后重试，"
                  f"或加 --partial 只导入正确的条目", file=sys.stderr)
        else:
            print(f"导入完成{verb}：共 {report.total} 条，新增 {len(report.created)}，更新 {len(report.updated)}，"
                  f"未变 {len(report.unchanged)}，错误 {report.bad_rows}")
    return 1 if report.problems and not report.written else 0


async def reindex(args: argparse.Namespace) -> int:
    import time

    from hotline.kb.engine import KnowledgeBase

    runtime = await _runtime(args)
    try:
        kb = KnowledgeBase(runtime)
        await kb.open(listen=False)
        started = time.perf_counter()
        count = await kb.rebuild("hotline kb reindex", procs=max(1, args.procs))
        elapsed = time.perf_counter() - started
        await kb.close()
    finally:
        await runtime.db.close()
    print(f"索引已重建：{count} 条知识，用时 {elapsed:.1f} 秒，目录 {kb.index.path}")
    return 0


async def status(args: argparse.Namespace) -> int:
    from hotline.kb.articles import count_by_state
    from hotline.kb.engine import KnowledgeBase

    runtime = await _runtime(args)
    try:
        kb = KnowledgeBase(runtime)
        await kb.open(listen=False)
        latest = await kb.latest()
        counts = await count_by_state(runtime.pool)
        open_flags = await runtime.pool.fetchval("SELECT count(*) FROM kb_flags WHERE state = 'open'")
        await kb.close()
    finally:
        await runtime.db.close()
    print(f"index: {kb.index.path}")
    print(f"cursor {kb.cursor} / change log {latest}; rebuilds this run: {kb.stats.rebuilds}"
          + (f" ({kb.stats.last_rebuild_reason})" if kb.stats.rebuilds else ""))
    print("articles: " + (", ".join(f"{state} {n}" for state, n in counts.items()) or "none")
          + f"; open flags: {open_flags}")
    return 0


async def search(args: argparse.Namespace) -> int:
    from hotline.kb.engine import KnowledgeBase, QueryTooLong, SearchRequest

    runtime = await _runtime(args)
    try:
        kb = KnowledgeBase(runtime)
        await kb.open(listen=False)
        try:
            result = await kb.search(SearchRequest(text=args.query, hotline=args.line, per_page=args.limit))
        except QueryTooLong as exc:
            print(exc.message, file=sys.stderr)
            return 1
        finally:
            await kb.close()
    finally:
        await runtime.db.close()
    if result.get("notice"):
        print(result["notice"])
    for item in result["items"]:
        print(f"{item['score']:7.2f}  {item['id']:<18} {item['title']}\n         {item['snippet']}")
    print(f"{result['total']} 条结果")
    return 0


async def expire(args: argparse.Namespace) -> int:
    from hotline.kb.articles import expire_past_validity

    db = await open_database(args.settings, min_size=1, max_size=2)
    try:
        ids = await expire_past_validity(db.pool)
    finally:
        await db.close()
    print(f"已过期：{len(ids)} 条" + (f"（{', '.join(ids)}）" if ids else ""))
    return 0
