"""Helpers shared by the knowledge-base tests (a uniquely named module, not conftest,
so that importing it cannot pick up another area's conftest)."""

from __future__ import annotations

import textwrap


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
