"""Imports: Markdown front matter, CSV/XLSX item format, the error report by row and
field, all-or-nothing unless partial, idempotent re-import, the 1,000-item limit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
from kbhelpers import article_md

from hotline.config import PROJECT_ROOT
from hotline.kb.importer import import_path

TODAY = dt.date(2026, 6, 1)
HEADER = ["分类路径", "标题", "内容", "发布单位", "材料类型", "关键词"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding=encoding)
    return path


GOOD = [
    ["市场监管/消费维权/退换货", "网购商品七日无理由退货", "消费者网购商品，自收到商品之日起七日内有权无理由退货。",
     "market-regulation", "热点问答", "七天无理由；退货；网购"],
    ["市场监管/食品安全", "食品安全问题如何投诉", "发现过期或变质食品，可以向市场监管部门投诉举报。", "市场监督管理局",
     "日常咨询", "食品安全、过期食品"],
]


async def count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM kb_articles")


async def test_markdown_import_and_idempotent_reimport(runtime, seed_dir: Path) -> None:
    pool = runtime.pool
    first = await import_path(pool, seed_dir, today=TODAY)
    assert first.written and len(first.created) == 6 and not first.problems
    assert [w.field for w in first.warnings] == ["valid_to"]  # the 2023 notice comes in expired
    row = await pool.fetchrow("SELECT * FROM kb_articles WHERE id = 'kb-t-001'")
    assert row["state"] == "published" and row["unit_code"] == "housing-fund" and row["hotlines"] == ["12329"]
    assert await pool.fetchval("SELECT state FROM kb_articles WHERE id = 'kb-t-006'") == "expired"
    changes = await pool.fetchval("SELECT count(*) FROM change_log WHERE entity = 'kb_article'")
    again = await import_path(pool, seed_dir, today=TODAY)
    assert again.written and len(again.unchanged) == 6 and not again.created and not again.updated
    assert await pool.fetchval("SELECT count(*) FROM change_log WHERE entity = 'kb_article'") == changes  # nothing to reindex
    (seed_dir / "12329" / "kb-t-001.md").write_text(article_md("kb-t-001", "住房公积金提取办理指南", "新的正文。",
                                                               keywords=("提取公积金", "公积金提现")),
                                                    encoding="utf-8")
    third = await import_path(pool, seed_dir, today=TODAY)
    assert third.updated == ["kb-t-001"] and await count(pool) == 6
    row = await pool.fetchrow("SELECT body, version FROM kb_articles WHERE id = 'kb-t-001'")
    assert row["body"] == "新的正文。" and row["version"] == 2
    history = await pool.fetch("SELECT action, changed_fields FROM kb_article_history WHERE article_id = 'kb-t-001' "
                               "ORDER BY id")
    assert [h["action"] for h in history] == ["import", "import"] and history[1]["changed_fields"] == ["body"]


async def test_bad_rows_are_reported_by_number_and_field_and_nothing_is_imported(runtime, tmp_path: Path) -> None:
    pool = runtime.pool
    rows = [
        GOOD[0],
        ["", "缺分类的条目", "内容", "market-regulation", "热点问答", "x"],                       # row 3: category
        ["市场监管", "标" * 129, "内容", "market-regulation", "热点问答", "x"],                     # row 4: title
        ["市场监管", "未知单位", "内容", "no-such-unit", "小说", "x"],                                # row 5: unit, type
        ["市场监管", "网购商品七日无理由退货", "重复标题", "market-regulation", "热点问答", "x"],     # row 6: duplicate
        GOOD[1],
    ]
    path = write_csv(tmp_path / "items.csv", rows)
    report = await import_path(pool, path, today=TODAY)
    assert not report.written and await count(pool) == 0
    found = {(p.row, p.field) for p in report.problems}
    assert found == {(3, "category"), (4, "title"), (5, "unit_code"), (5, "material_type"), (6, "title")}
    assert report.bad_rows == 4 and report.total == 6
    assert "第 6 行" in str(next(p for p in report.problems if p.row == 6))
    partial = await import_path(pool, path, partial=True, today=TODAY)
    assert partial.written and len(partial.created) == 2 and await count(pool) == 2
    row = await pool.fetchrow("SELECT * FROM kb_articles WHERE title = '食品安全问题如何投诉'")
    assert row["unit_code"] == "market-regulation"           # a unit name is accepted
    assert row["keywords"] == ["食品安全", "过期食品"]
    assert set(row["hotlines"]) >= {"12315"}                   # lines of the issuing unit


async def test_invalid_front_matter_and_duplicate_titles_in_markdown(runtime, tmp_path: Path) -> None:
    root = tmp_path / "md"
    root.mkdir()
    (root / "a.md").write_text(article_md("kb-a", "同一个标题", "正文"), encoding="utf-8")
    (root / "b.md").write_text(article_md("kb-b", "同一个标题", "正文"), encoding="utf-8")
    (root / "c.md").write_text("---\ntitle: [unclosed\n---\n正文\n", encoding="utf-8")
    (root / "d.md").write_text("没有头信息的文件\n", encoding="utf-8")
    (root / "e.md").write_text(article_md("kb e!", "坏编号", "正文", hotlines=("99999",), valid_from="2024-02-30"),
                               encoding="utf-8")
    report = await import_path(runtime.pool, root, today=TODAY)
    assert not report.written and await count(runtime.pool) == 0
    by_source = {(p.source, p.field) for p in report.problems}
    assert ("b.md", "title") in by_source and ("c.md", "front_matter") in by_source
    assert ("d.md", "front_matter") in by_source
    assert {("e.md", "id"), ("e.md", "hotlines"), ("e.md", "valid_from")} <= by_source
    assert report.total == 5 and report.bad_rows == 4


async def test_xlsx_gbk_csv_and_limits(runtime, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["category", "title", "content", "issuing_unit", "material_type", "keywords", "valid_to"])
    sheet.append(["人力社保/就业", "失业登记办理指南", "失业人员可以在户籍地或常住地办理失业登记。", "hrss", "办事指南",
                  "失业登记", dt.datetime(2030, 12, 31)])
    book.save(tmp_path / "items.xlsx")
    report = await import_path(runtime.pool, tmp_path / "items.xlsx", today=TODAY)
    assert report.written and len(report.created) == 1, [str(p) for p in report.problems]
    assert await runtime.pool.fetchval("SELECT valid_to FROM kb_articles") == dt.date(2030, 12, 31)

    gbk = write_csv(tmp_path / "gbk.csv", [GOOD[0]], encoding="gb18030")
    assert len((await import_path(runtime.pool, gbk, today=TODAY)).created) == 1

    missing = write_csv(tmp_path / "missing.csv", [["a", "b"]], header=["标题", "内容"])
    report = await import_path(runtime.pool, missing, today=TODAY)
    assert not report.written and report.problems[0].field == "header" and report.problems[0].row == 1

    many = [["测试/批量", f"批量条目{i}", "内容", "hrss", "日常咨询", "批量"] for i in range(1001)]
    report = await import_path(runtime.pool, write_csv(tmp_path / "many.csv", many), today=TODAY)
    assert not report.written and report.problems[0].field == "items" and "1000" in report.problems[0].message


async def test_import_cli_and_api(runtime, api_as, tmp_path: Path, settings) -> None:
    path = write_csv(tmp_path / "items.csv", [GOOD[0], ["", "坏行", "内容", "hrss", "日常咨询", "x"]])
    env = {**os.environ, "HOTLINE_DATABASE_URL": settings.database.url, "HOTLINE_DATA_DIR": str(settings.data_dir)}
    proc = subprocess.run([sys.executable, "-m", "hotline", "kb", "import", str(path)], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "第 3 行" in proc.stderr and "category" in proc.stderr
    assert await count(runtime.pool) == 0
    proc = subprocess.run([sys.executable, "-m", "hotline", "kb", "import", "--partial", str(path)], env=env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "新增 1" in proc.stdout, proc.stderr

    liaison = await api_as("liaison", unit_code="hrss")
    raw = path.read_bytes()
    resp = await liaison.post("/api/v1/kb/import?format=csv", data=raw, headers={"Content-Type": "text/csv"})
    assert resp.status == 400
    problems = {(p["row"], p["field"]) for p in (await resp.json())["report"]["problems"]}
    assert problems == {(2, "unit_code"), (3, "category")}  # another unit's item; the bad row
    own = write_csv(tmp_path / "own.csv", [["人力社保/就业", "就业登记", "内容", "hrss", "日常咨询", "就业"]])
    resp = await liaison.post("/api/v1/kb/import?format=csv", data=own.read_bytes())
    assert resp.status == 200, await resp.text()
    assert await runtime.pool.fetchval("SELECT state FROM kb_articles WHERE title = '就业登记'") == "draft"
