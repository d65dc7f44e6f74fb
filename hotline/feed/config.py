"""``[feed]`` settings (the change log), read through the typed loader like every section."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.config import Settings, section_settings
from hotline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class FeedSettings:
    #: days a change stays in the change log (never past the upstream push's cursor)
    retention_days: int = 7


def feed_settings(settings: Settings) -> FeedSettings:
    cfg = section_settings(settings, "feed", FeedSettings)
    if cfg.retention_days < 1:
        raise ConfigError(f"[feed] retention_days must be ≥ 1, got {cfg.retention_days}", field="feed.retention_days")
    return cfg
