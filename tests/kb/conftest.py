"""Knowledge-base fixtures: small fixture articles, importing them, and an engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kbhelpers import article_md

from hotline.db import Database
from hotline.db.pool import create_pool
from hotline.kb.engine import KnowledgeBase, close_kb, get_kb
from hotline.kb.importer import import_path
from hotline.kb.text import Segmenter
from hotline.runtime import Runtime


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """Six small articles over four lines (one with an ended validity)."""
    root = tmp_path / "kb"
    files: dict[str, str] = {
        "12329/kb-t-001.md": article_md(
            "kb-t-001", "住房公积金提取办理指南", "职工购房、租房或退休时可以申请提取住房公积金。\n\n**所需材料**：身份证、银行卡。",
            keywords=("提取公积金", "公积金提现")),
        "12329/kb-t-002.md": article_md(
            "kb-t-002", "住房公积金贷款条件", "连续足额缴存满6个月的职工可以申请住房公积金贷款。",
            category="住房公积金/贷款", keywords=("公积金贷款",)),
        "12333/kb-t-003.md": article_md(
            "kb-t-003", "社会保险关系转移接续", "跨省流动就业的参保人员，可以办理养老保险关系转移接续。",
            category="人力社保/社会保险/关系转移", unit="hrss", hotlines=("12333",), keywords=("社保转移",)),
        "12393/kb-t-004.md": article_md(
            "kb-t-004", "医疗保险异地就医直接结算", "参保人员备案后，在异地定点医疗机构就医可以直接结算医疗费用。",
            category="医疗保障/异地就医", unit="medical-security", hotlines=("12393",), keywords=("异地就医", "报销")),
        "12345/kb-t-005.md": article_md(
            "kb-t-005", "夜间施工噪声扰民怎么投诉", "夜间22时至次日6时施工产生噪声，可拨打12345反映，由生态环境部门处理。",
            category="生态环境/噪声", unit="ecology-env", hotlines=("12345", "12369"), material_type="热点问答",
            keywords=("噪音扰民", "夜间施工")),
        "12329/kb-t-006.md": article_md(
            "kb-t-006", "2023年公积金缴存基数调整通知", "2023年度住房公积金缴存基数调整工作已经结束。",
            category="住房公积金/缴存", material_type="通知公告", valid_from="2023-01-01", valid_to="2023-12-31"),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
async def seeded(runtime: Runtime, seed_dir: Path) -> Any:
    report = await import_path(runtime.pool, seed_dir, today=dt.date(2026, 6, 1))
    assert report.written and not report.problems, [str(p) for p in report.problems]
    return report


@pytest.fixture
async def kb(runtime: Runtime, seeded: Any) -> AsyncIterator[KnowledgeBase]:
    engine = await get_kb(runtime)
    try:
        yield engine
    finally:
        await close_kb(runtime)


@pytest.fixture
async def second_node(settings, registry, db_url, tmp_path: Path) -> AsyncIterator[Runtime]:
    """Another node: same database, its own data directory (so its own index)."""
    other = replace(settings, data_dir=tmp_path / "node-b")
    pool = await create_pool(db_url, other, min_size=1, max_size=4)
    rt = Runtime(other, registry, Database(pool=pool, url=db_url))
    try:
        yield rt
    finally:
        await rt.close()
        await pool.close()


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> Segmenter:
    """A segmenter with its own jieba cache (no lexicon), for the synthetic indexes."""
    return Segmenter(cache_dir=tmp_path_factory.mktemp("cache"))
