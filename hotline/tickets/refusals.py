"""Reasons for the outcomes without handling: 不予受理 (``refused``) and 转其他渠道
(``transferred``), from ``config/refusal_reasons.yaml``; and their counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from hotline.config import SHIPPED_CONFIG_DIR, ConfigFiles, packaged_files, read_yaml
from hotline.errors import ConfigError, ValidationError

REASONS_FILE = SHIPPED_CONFIG_DIR / "refusal_reasons.yaml"
OUTCOMES = ("refused", "transferred")
OUTCOME_NAMES_ZH = {"refused": "不予受理", "transferred": "转其他渠道"}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    name: str
    outcomes: frozenset[str]


def load_reasons(path: Path = REASONS_FILE) -> tuple[Reason, ...]:
    """The configured reasons, checked (unique codes, known outcomes); a node keeps them
    (:func:`reasons_for`)."""
    data = read_yaml(path) or {}
    out: list[Reason] = []
    for i, item in enumerate(data.get("reasons") or ()):
        code, name, outcome = item.get("code"), item.get("name"), item.get("outcome")
        if not isinstance(code, str) or not code or not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: reasons[{i}] needs a code and a name")
        if outcome not in (*OUTCOMES, "both"):
            raise ConfigError(f"{path}: reasons[{i}].outcome must be refused, transferred or both, got {outcome!r}")
        if any(r.code == code for r in out):
            raise ConfigError(f"{path}: reasons[{i}]: code {code!r} appears twice")
        out.append(Reason(code, name, frozenset(OUTCOMES) if outcome == "both" else frozenset({outcome})))
    if not out:
        raise ConfigError(f"{path}: no reasons configured")
    return tuple(out)


def reasons_for(files: ConfigFiles | None) -> tuple[Reason, ...]:
    """The node's reasons: ``refusal_reasons.yaml`` from its ``config_dir`` (else the packaged
    file), parsed once per node (``runtime.files``); with no files, the packaged file."""
    return (files or packaged_files()).load("refusal_reasons.yaml", load_reasons)


def check_reason(code: Any, outcome: str, reasons: tuple[Reason, ...]) -> Reason:
    allowed = [r for r in reasons if outcome in r.outcomes]
    for r in allowed:
        if r.code == code:
            return r
    raise ValidationError(f"{OUTCOME_NAMES_ZH[outcome]}原因 {code!r} 不在配置的原因中（可选："
                          f"{', '.join(r.code for r in allowed)}）", field="reason_code")


def reasons_json(reasons: tuple[Reason, ...]) -> list[dict[str, Any]]:
    return [{"code": r.code, "name": r.name, "outcomes": sorted(r.outcomes)} for r in reasons]


async def refusal_counts(conn: asyncpg.Connection | asyncpg.Pool, *, start: datetime, end: datetime,
                         hotline_number: str | None = None,
                         reasons: tuple[Reason, ...] | None = None) -> dict[str, Any]:
    """Tickets closed without handling in ``[start, end)`` by outcome and reason,
    with every configured reason listed (zero counts too) and the share of all
    tickets taken in that period."""
    rows = await conn.fetch(
        """SELECT close_kind, refusal_reason, count(*) AS n FROM tickets
            WHERE close_kind IN ('refused', 'transferred') AND closed_at >= $1 AND closed_at < $2
              AND ($3::text IS NULL OR hotline_number = $3)
            GROUP BY 1, 2""", start, end, hotline_number)
    taken = await conn.fetchval(
        "SELECT count(*) FROM tickets WHERE created_at >= $1 AND created_at < $2 AND master_id IS NULL "
        "AND ($3::text IS NULL OR hotline_number = $3)", start, end, hotline_number)
    counts = {(r["close_kind"], r["refusal_reason"]): int(r["n"]) for r in rows}
    items: list[dict[str, Any]] = []
    for outcome in OUTCOMES:
        for reason in reasons if reasons is not None else reasons_for(None):
            if outcome in reason.outcomes or counts.get((outcome, reason.code)):
                items.append({"outcome": outcome, "outcome_name": OUTCOME_NAMES_ZH[outcome], "reason_code": reason.code,
                              "reason_name": reason.name, "count": counts.pop((outcome, reason.code), 0)})
    for (outcome, code), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        items.append({"outcome": outcome, "outcome_name": OUTCOME_NAMES_ZH[outcome], "reason_code": code,
                      "reason_name": "（已不在配置中）", "count": n})  # a reason since removed from the file
    totals = {o: sum(i["count"] for i in items if i["outcome"] == o) for o in OUTCOMES}
    return {"from": start, "to": end, "items": items, "totals": totals, "tickets_taken": int(taken or 0)}
