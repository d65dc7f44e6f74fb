"""``[upstream]`` settings."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.config import Settings, section_settings
from hotline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    #: the provincial platform's endpoint (empty: no push)
    url: str = ""
    #: changes per request
    batch_size: int = 50
    #: refusals of one record before it goes to dead-letter
    max_attempts: int = 8
    #: first retry delay in seconds, doubled on every failure up to backoff_max
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    #: seconds a request may take
    timeout: float = 10.0
    #: entities pushed (call, ticket, subcenter_call, subcenter_ticket)
    entities: tuple[str, ...] = ("call", "ticket", "subcenter_call", "subcenter_ticket")
    #: environment variable holding the key that signs requests (HMAC-SHA256, like ingest); empty: unsigned
    key_env: str = "HOTLINE_UPSTREAM_KEY"

    @property
    def enabled(self) -> bool:
        return bool(self.url)


def upstream_settings(settings: Settings) -> UpstreamSettings:
    cfg = section_settings(settings, "upstream", UpstreamSettings)
    if cfg.max_attempts < 1 or cfg.batch_size < 1:
        raise ConfigError("[upstream] max_attempts and batch_size must be ≥ 1", field="upstream")
    if cfg.key_env and not cfg.key_env.startswith("HOTLINE_"):
        raise ConfigError(f"[upstream] key_env must name a HOTLINE_* environment variable, got {cfg.key_env!r}",
                          field="upstream.key_env")
    return cfg
