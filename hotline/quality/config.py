"""``[quality]`` settings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hotline.config import Settings
from hotline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class QualitySettings:
    #: a record received later than this after its event is "late" (seconds)
    late_threshold_seconds: int = 300
    #: when the daily job reports on the previous day (local time)
    daily_hour: int = 1
    daily_minute: int = 30
    #: examples listed per finding
    examples: int = 5


def quality_settings(settings: Settings) -> QualitySettings:
    raw: dict[str, Any] = dict(settings.section("quality"))
    known = {f.name for f in fields(QualitySettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"[quality] has no setting {unknown[0]!r}", field=f"quality.{unknown[0]}")
    try:
        return QualitySettings(**raw)
    except TypeError as exc:
        raise ConfigError(f"[quality]: {exc}", field="quality") from None
