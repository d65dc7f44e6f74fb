"""The ``[kb]`` table of config/hotline.toml, read once into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from hotline.config import PROJECT_ROOT, Settings
from hotline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class KbSettings:
    #: empty: ``data_dir/kb-index``; relative paths are taken from the project root
    index_dir: str = ""
    synonyms_path: str = "config/kb_synonyms.yaml"
    #: seconds between safety-net polls of the change log (notifications are the fast path)
    poll_seconds: float = 15.0
    #: the most items one import may carry
    max_import_items: int = 1000
    #: longest query accepted from a person (longer: a clear 400)
    max_query_chars: int = 500
    max_page_size: int = 50
    snippet_chars: int = 120
    #: a search that takes longer is answered with 503 (the call flow falls back)
    search_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> KbSettings:
        raw = dict(settings.section("kb"))
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"[kb] has no setting {key!r}", field=f"kb.{key}")
            default = getattr(cls(), key)
            try:
                values[key] = type(default)(value)
            except (TypeError, ValueError):
                raise ConfigError(f"kb.{key}: expected {type(default).__name__}, got {value!r}",
                                  field=f"kb.{key}") from None
        return cls(**values)


def _resolve(path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def index_dir(settings: Settings) -> Path:
    configured = KbSettings.from_settings(settings).index_dir
    return _resolve(configured) if configured else settings.data_dir / "kb-index"


def synonyms_path(settings: Settings) -> Path:
    return _resolve(KbSettings.from_settings(settings).synonyms_path)
