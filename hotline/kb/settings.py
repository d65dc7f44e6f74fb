"""The ``[kb]`` table of config/hotline.toml, read once into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.config import PROJECT_ROOT, Settings, section_settings


@dataclass(frozen=True, slots=True)
class KbSettings:
    #: empty: ``data_dir/kb-index``; relative paths are taken from the project root
    index_dir: str = ""
    #: empty: ``kb_synonyms.yaml`` of the node's ``config_dir`` (else the packaged one); a
    #: relative path is taken from ``config_dir``
    synonyms_path: str = ""
    #: the domain dictionary (words jieba keeps whole) and the stop words (seed files;
    #: editors add more from the console)
    dictionary_path: str = "knowledge_base/lexicon/dictionary.txt"
    stop_words_path: str = "knowledge_base/lexicon/stopwords.txt"
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
        return section_settings(settings, "kb", cls)


def _resolve(path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def index_dir(settings: Settings) -> Path:
    configured = KbSettings.from_settings(settings).index_dir
    return _resolve(configured) if configured else settings.data_dir / "kb-index"


def synonyms_path(settings: Settings) -> Path:
    configured = KbSettings.from_settings(settings).synonyms_path
    if not configured:
        return settings.config_file("kb_synonyms.yaml")
    p = Path(configured).expanduser()
    return p if p.is_absolute() else settings.config_dir / p


def dictionary_path(settings: Settings) -> Path:
    return _resolve(KbSettings.from_settings(settings).dictionary_path)


def stop_words_path(settings: Settings) -> Path:
    return _resolve(KbSettings.from_settings(settings).stop_words_path)
