"""``config/sla.yaml``: alert levels, the scan interval, the seed policies and the
rules a unit cannot game (time basis per urgency and stage, the return window, the
waiting-on-citizen cap, the extension caps, the supervision reply time). Checked
when a node starts: an unknown key or a bad value stops it, naming the setting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline.config import SHIPPED_CONFIG_DIR, ConfigFiles, packaged_files, read_yaml
from hotline.errors import ConfigError

SLA_FILE = SHIPPED_CONFIG_DIR / "sla.yaml"
STAGES = ("sign", "handle", "reply", "callback")
UNITS = ("working_days", "working_hours", "hours", "days")
STAGE_NAMES_ZH = {"sign": "签收", "handle": "办理", "reply": "回复审核", "callback": "回访", "supervise": "督办回复"}
#: the ticket dimensions a policy matches on (the tickets package uses these lists)
URGENCIES = ("normal", "urgent", "critical")
KINDS = ("enquiry", "help", "suggestion", "complaint", "report", "praise")
BASES = ("working", "wall")

_KEYS = {"alert_levels", "scan_interval_seconds", "policies", "time_basis", "return_window_working_days",
         "await_citizen", "extension", "supervision"}


@dataclass(frozen=True, slots=True)
class SlaConfig:
    alert_levels: tuple[int, ...] = (50, 80, 100, 150)
    scan_interval_seconds: int = 60
    policies: tuple[dict[str, Any], ...] = ()
    #: (urgency, stage) -> "wall"; absent pairs run on working time
    wall_stages: frozenset[tuple[str, str]] = field(default_factory=lambda: frozenset(
        {("urgent", "sign"), ("urgent", "handle"), ("critical", "sign"), ("critical", "handle")}))
    return_window_working_days: float = 2.0
    await_max_count: int = 2
    await_max_working_days: float = 5.0
    extension_max_days: float = 15.0
    extension_max_count: int = 2
    supervision_reply_working_days: float = 1.0

    def is_wall(self, urgency: str, stage: str) -> bool:
        return (urgency, stage) in self.wall_stages


def _number(path: Path, where: str, value: Any, *, low: float, high: float, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)) \
            or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{path}: {where} must be {kind} in {low}..{high}, got {value!r}")
    return value


def _section(path: Path, data: dict[str, Any], name: str, keys: set[str]) -> dict[str, Any]:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: {name} must be a mapping")
    unknown = set(section) - keys
    if unknown:
        raise ConfigError(f"{path}: unknown setting {name}.{sorted(unknown)[0]} (known: {sorted(keys)})")
    return section


def parse_sla_config(data: Any, path: Path = SLA_FILE) -> SlaConfig:
    """Check and type the file's content; defaults for what it leaves out."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must be a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown setting {sorted(unknown)[0]!r} (known: {sorted(_KEYS)})")
    d = SlaConfig()
    levels = tuple(sorted(int(x) for x in data.get("alert_levels", list(d.alert_levels))))
    if 100 not in levels or any(p <= 0 or p > 1000 for p in levels) or len(set(levels)) != len(levels):
        raise ConfigError(f"{path}: alert_levels must be distinct percentages including 100")
    policies = tuple(data.get("policies") or ())
    for i, p in enumerate(policies):
        if p.get("stage") not in STAGES or p.get("unit") not in UNITS or float(p.get("amount", 0)) <= 0:
            raise ConfigError(f"{path}: policies[{i}] needs stage in {STAGES}, unit in {UNITS}, amount > 0")
    wall = set(d.wall_stages) if "time_basis" not in data else set()
    basis = _section(path, data, "time_basis", set(URGENCIES))
    for urgency, stages in basis.items():
        if not isinstance(stages, dict):
            raise ConfigError(f"{path}: time_basis.{urgency} must map stages to working or wall")
        for stage, value in stages.items():
            if stage not in STAGES:
                raise ConfigError(f"{path}: time_basis.{urgency}.{stage}: unknown stage (stages: {list(STAGES)})")
            if value not in BASES:
                raise ConfigError(f"{path}: time_basis.{urgency}.{stage} must be working or wall, got {value!r}")
            if value == "wall":
                wall.add((urgency, stage))
    wait = _section(path, data, "await_citizen", {"max_count", "max_working_days"})
    ext = _section(path, data, "extension", {"max_days", "max_count"})
    sup = _section(path, data, "supervision", {"reply_working_days"})
    return SlaConfig(
        alert_levels=levels,
        scan_interval_seconds=_number(path, "scan_interval_seconds", data.get("scan_interval_seconds", 60),
                                      low=1, high=3600, integer=True),
        policies=policies,
        wall_stages=frozenset(wall),
        return_window_working_days=float(_number(
            path, "return_window_working_days", data.get("return_window_working_days", d.return_window_working_days),
            low=0, high=30)),
        await_max_count=_number(path, "await_citizen.max_count", wait.get("max_count", d.await_max_count),
                                low=0, high=20, integer=True),
        await_max_working_days=float(_number(path, "await_citizen.max_working_days",
                                             wait.get("max_working_days", d.await_max_working_days), low=0, high=60)),
        extension_max_days=float(_number(path, "extension.max_days", ext.get("max_days", d.extension_max_days),
                                         low=0.5, high=60)),
        extension_max_count=_number(path, "extension.max_count", ext.get("max_count", d.extension_max_count),
                                    low=0, high=20, integer=True),
        supervision_reply_working_days=float(_number(
            path, "supervision.reply_working_days",
            sup.get("reply_working_days", d.supervision_reply_working_days), low=0.1, high=30)),
    )


def load_sla_config(path: Path = SLA_FILE) -> SlaConfig:
    """Read and check the file (a node keeps the result: :func:`sla_config`)."""
    data = read_yaml(path)
    return parse_sla_config(data, path)


def sla_config(files: ConfigFiles | None) -> SlaConfig:
    """The node's rules: ``sla.yaml`` from its ``config_dir`` (the packaged file when the
    site has none), parsed once per node (``runtime.files``); with no files, the packaged
    file (tests and tools that run on the defaults)."""
    return (files or packaged_files()).load("sla.yaml", load_sla_config)
