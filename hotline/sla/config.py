"""``config/sla.yaml``: alert levels, the scan interval and the seed policies."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hotline.config import PROJECT_ROOT
from hotline.errors import ConfigError

SLA_FILE = PROJECT_ROOT / "config" / "sla.yaml"
STAGES = ("sign", "handle", "reply", "callback")
UNITS = ("working_days", "working_hours", "hours", "days")
STAGE_NAMES_ZH = {"sign": "签收", "handle": "办理", "reply": "回复审核", "callback": "回访"}


@dataclass(frozen=True, slots=True)
class SlaConfig:
    alert_levels: tuple[int, ...] = (50, 80, 100, 150)
    scan_interval_seconds: int = 60
    policies: tuple[dict[str, Any], ...] = ()


def level_kind(pct: int) -> str:
    return "warning" if pct < 100 else "overdue" if pct == 100 else "escalation"


@functools.cache
def load_sla_config(path: Path = SLA_FILE) -> SlaConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    levels = tuple(sorted(int(x) for x in data.get("alert_levels", [50, 80, 100, 150])))
    if 100 not in levels or any(p <= 0 or p > 1000 for p in levels) or len(set(levels)) != len(levels):
        raise ConfigError(f"{path}: alert_levels must be distinct percentages including 100")
    policies = tuple(data.get("policies") or ())
    for i, p in enumerate(policies):
        if p.get("stage") not in STAGES or p.get("unit") not in UNITS or float(p.get("amount", 0)) <= 0:
            raise ConfigError(f"{path}: policies[{i}] needs stage in {STAGES}, unit in {UNITS}, amount > 0")
    return SlaConfig(levels, int(data.get("scan_interval_seconds", 60)), policies)
