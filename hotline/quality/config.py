"""``[quality]`` settings."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.config import Settings, section_settings


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
    return section_settings(settings, "quality", QualitySettings)
