"""Helpers shared by the knowledge-base tests (a uniquely named module, not conftest,
so that importing it cannot pick up another area's conftest)."""

from __future__ import annotations

import datetime as dt
import random
import textwrap
from typing import Any

from hotline.kb.index import document
from hotline.kb.text import Segmenter


def article_md(id: str, title: str, body: str, *, category: str = "住房公积金/提取", unit: str = "housing-fund",
               material_type: str = "办事指南", hotlines: tuple[str, ...] = ("12329",),
               keywords: tuple[str, ...] = (), valid_from: str = "2024-01-01", valid_to: str | None = None,
               review_due: str = "2030-01-01") -> str:
    lines = ", ".join(f'"{h}"' for h in hotlines)
    words = ", ".join(f'"{k}"' for k in keywords)
    return textwrap.dedent(f"""\
        ---
        id: {id}
        title: "{title}"
        category: "{category}"
        issuing_unit: {unit}
        material_type: {material_type}
        hotlines: [{lines}]
        keywords: [{words}]
        valid_from: {valid_from}
        valid_to: {valid_to or 'null'}
        review_due: {review_due}
        ---
        """) + body + "\n"


#: the vocabulary of the synthetic indexes (tests/kb/test_kb_matching.py, test_kb_generation.py)
WORDS = ["公积金", "社保", "医保", "户口", "护照", "驾照", "停车", "噪音", "物业", "供暖", "燃气", "自来水", "学校",
         "医院", "公交"]
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def index_doc(segmenter: Segmenter, article_id: str, title: str, body: str, *, hotline: str = "12333",
              state: str = "published") -> dict[str, Any]:
    """One article as the index stores it."""
    return document({"id": article_id, "title": title, "category": "测试/发布", "keywords": [], "body": body,
                     "unit_code": "hrss", "hotlines": [hotline], "state": state,
                     "material_type": "日常咨询", "valid_from": None, "valid_to": None, "review_due": None,
                     "version": 1, "updated_at": NOW}, segmenter)


def random_docs(segmenter: Segmenter, count: int = 300, *, varied: bool = False) -> list[dict[str, Any]]:
    """``count`` articles of two random WORDS each, seeded (the same every run); ``varied``:
    also a random line (12333/12329) and state (published twice as often as draft)."""
    rng = random.Random(1)
    docs = []
    for i in range(count):
        title = "".join(rng.sample(WORDS, 2)) + str(i)
        body = "。".join(rng.choice(WORDS) * rng.randint(1, 3) for _ in range(rng.randint(2, 30)))
        extra = ({"hotline": rng.choice(["12333", "12329"]), "state": rng.choice(["published", "published", "draft"])}
                 if varied else {})
        docs.append(index_doc(segmenter, f"a{i}", title, body, **extra))
    return docs
