"""Articles as the API shows them (JSON-ready values; editors see the workflow fields)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from hotline.kb.model import STATE_NAMES_ZH


def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def article_json(row: Mapping[str, Any], *, editor: bool = True) -> dict[str, Any]:
    item = {k: iso(v) for k, v in dict(row).items()}
    item["state_zh"] = STATE_NAMES_ZH.get(item.get("state", ""), "")
    if not editor:
        for key in ("revision", "revision_state", "revision_by", "created_by", "updated_by", "published_by"):
            item.pop(key, None)
    return item


def row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: iso(v) for k, v in dict(row).items()}
