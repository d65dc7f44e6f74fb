"""Configuration: read once from ``config/hotline.toml`` plus ``HOTLINE_*`` environment
overrides into typed, frozen objects.

Every setting has a default, so an empty file is a valid configuration. The
environment wins over the file so that an operator (or a test) can move a port or
point at another database without editing files. Secrets are never settings of
this file: they come from the environment (``HOTLINE_AMI_SECRET``, the ingest
keys). Browser sessions are random tokens kept server-side (only their hash is
stored), so nothing here signs tokens and there is no node secret to configure.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import yaml

from hotline.errors import ConfigError

T = TypeVar("T")
PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent
#: Where ``config/``, ``migrations/`` and ``knowledge_base/`` (the seed articles) are:
#: the source checkout when running from one, else the copy shipped inside the
#: installed package (``hotline/_shipped``, mapped from the top-level directories by
#: setup.py), so ``pip install`` + ``hotline migrate`` + ``hotline serve`` runs anywhere.
INSTALLED = not ((_CHECKOUT / "migrations").is_dir() and (_CHECKOUT / "config").is_dir()
                 and (_CHECKOUT / "setup.cfg").is_file())
PROJECT_ROOT = PACKAGE_DIR / "_shipped" if INSTALLED else _CHECKOUT
#: the configuration files shipped with the package (the defaults behind ``config_dir``)
SHIPPED_CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_CONFIG_PATH = SHIPPED_CONFIG_DIR / "hotline.toml"
#: relative paths in the file are read against the checkout, or (installed) the current
#: directory for data_dir and the shipped files for the rest
_DATA_BASE = Path.cwd if INSTALLED else (lambda: _CHECKOUT)


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: seconds a request in flight may take to finish on shutdown
    shutdown_timeout: float = 10.0
    #: extra seconds before dropping idle keep-alive/WebSocket connections
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    #: set the Secure flag on cookies (on behind TLS; off for plain-HTTP loopback demos)
    secure_cookies: bool = False
    #: addresses or networks of reverse proxies whose X-Forwarded-For is believed;
    #: empty: the peer address is the client (nobody can claim another address)
    trusted_proxies: tuple[str, ...] = ()
    #: password verifications (argon2, in threads) running at once, and waiting beyond
    #: them; a sign-in past both is answered 503 at once instead of queueing
    signin_concurrency: int = 2
    signin_backlog: int = 16


@dataclass(frozen=True, slots=True)
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    #: a single AGI command must be answered within this many seconds
    command_timeout: float = 5.0
    #: a whole FastAGI session may not last longer than this
    session_timeout: float = 30.0
    #: longest header/reply line accepted, in bytes
    max_line_bytes: int = 8192
    #: hosts allowed to open FastAGI sessions (addresses, networks, names); empty:
    #: loopback plus ``[calls] ami_host`` (hotline/agi/allow.py)
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    #: empty: start the embedded PostgreSQL under ``data_dir/pg``
    url: str = ""
    pool_min: int = 2
    pool_max: int = 20
    command_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    web: WebSettings = field(default_factory=WebSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    data_dir: Path = field(default_factory=lambda: _DATA_BASE() / "var")
    #: the default configuration files (registry, SLA, categories, calendars, ...)
    config_dir: Path = PROJECT_ROOT / "config"
    #: default: ``config_dir/hotlines.yaml``
    registry_path: Path = PROJECT_ROOT / "config" / "hotlines.yaml"
    migrations_dir: Path = PROJECT_ROOT / "migrations"
    log_level: str = "INFO"
    log_format: str = "text"
    timezone: str = "Asia/Shanghai"
    #: demo mode seeds demo users and traffic; refused unless explicitly enabled
    demo: bool = False
    #: sections this module does not know, for feature packages to parse themselves
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def config_file(self, name: str) -> Path:
        """``config_dir/name`` (``sla.yaml``, ``categories.yaml``, ``calendar``, ...), or the
        packaged default when the site's ``config_dir`` does not have it: a site overrides
        only the files it changes."""
        path = self.config_dir / name
        return path if path.exists() else SHIPPED_CONFIG_DIR / name

    def section(self, name: str) -> Mapping[str, Any]:
        """Raw table ``[name]`` of the file, for feature packages with their own settings."""
        return self.extra.get(name, {})


def read_yaml(path: Path) -> Any:
    """A configuration file's YAML (None for an empty file), or a :class:`ConfigError`
    naming the file: the one reader behind every ``*.yaml`` loader."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


class ConfigFiles:
    """The node's configuration files (``sla.yaml``, ``refusal_reasons.yaml``,
    ``categories.yaml``, ``regions.yaml``), each read through
    :meth:`Settings.config_file` and parsed once by the loader its package gives.

    One belongs to each :class:`~hotline.runtime.Runtime` (``runtime.files``), checked
    when the node starts (``hotline.node.check_config_files``: a bad file stops the node
    there, naming the file and the setting); two runtimes with different ``config_dir``
    in one process each read their own. The domain's accessors take it:
    ``sla_config(files)``, ``reasons_for(files)``, ``categories_for(files)``,
    ``regions_for(files)``."""

    __slots__ = ("settings", "_parsed")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._parsed: dict[tuple[str, Callable[[Path], Any]], Any] = {}

    def load(self, name: str, parse: Callable[[Path], T]) -> T:
        """``parse(settings.config_file(name))``, parsed on first use and kept."""
        key = (name, parse)
        if key not in self._parsed:
            self._parsed[key] = parse(self.settings.config_file(name))
        value: T = self._parsed[key]
        return value

    @property
    def config_dir(self) -> Path:
        return self.settings.config_dir


@functools.cache
def packaged_files() -> ConfigFiles:
    """The files shipped with the package, for what runs without a node (tests, tools and
    calls that pass no ``files``). Kept once per process on purpose: the package's own
    files are constants of the installed code, like a compiled regex; a site's files are
    never kept here (they are its runtime's :class:`ConfigFiles`)."""
    return ConfigFiles(Settings(config_dir=SHIPPED_CONFIG_DIR, registry_path=SHIPPED_CONFIG_DIR / "hotlines.yaml"))


# (env var, section or None for top level, key, type)
_ENV_OVERRIDES: tuple[tuple[str, str | None, str, type], ...] = (
    ("HOTLINE_DATABASE_URL", "database", "url", str),
    ("HOTLINE_DB_POOL_MAX", "database", "pool_max", int),
    ("HOTLINE_WEB_HOST", "web", "host", str),
    ("HOTLINE_WEB_PORT", "web", "port", int),
    ("HOTLINE_SECURE_COOKIES", "web", "secure_cookies", bool),
    ("HOTLINE_AGI_HOST", "agi", "host", str),
    ("HOTLINE_AGI_PORT", "agi", "port", int),
    ("HOTLINE_DATA_DIR", None, "data_dir", Path),
    ("HOTLINE_CONFIG_DIR", None, "config_dir", Path),
    ("HOTLINE_REGISTRY", None, "registry_path", Path),
    ("HOTLINE_LOG_LEVEL", None, "log_level", str),
    ("HOTLINE_LOG_FORMAT", None, "log_format", str),
    ("HOTLINE_TIMEZONE", None, "timezone", str),
    ("HOTLINE_DEMO", None, "demo", bool),
)

_SECTIONS = {"web": WebSettings, "agi": AgiSettings, "database": DatabaseSettings}
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _coerce(value: Any, kind: type, where: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if kind is Path:
            path = Path(str(value)).expanduser()
            if path.is_absolute():
                return path
            return (_DATA_BASE() if where in ("data_dir", "HOTLINE_DATA_DIR") else PROJECT_ROOT) / path
        if kind is int and (isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())):
            raise ValueError(value)
        if kind is tuple:
            if not isinstance(value, list | tuple):
                raise ValueError(value)
            return tuple(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: expected {kind.__name__}, got {value!r}", field=where
        ) from None


def _build_section(cls: type[T], raw: Mapping[str, Any], name: str) -> T:
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    defaults = cls()
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"[{name}] has no setting {key!r}", field=f"{name}.{key}")
        default = getattr(defaults, key)
        kind = Path if isinstance(default, Path) else type(default)
        values[key] = _coerce(value, kind, f"{name}.{key}")
        if isinstance(default, tuple) and default and all(isinstance(x, str) for x in default):
            values[key] = tuple(str(x) for x in values[key])
    return cls(**values)


def read_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The one place a secret (a signing key, the AMI password) is read from the
    environment: never a setting of the file, never read by feature modules from
    ``os.environ`` themselves. Only ``HOTLINE_*`` variables are secrets here."""
    if not name.startswith("HOTLINE_"):
        raise ConfigError(f"a secret comes from a HOTLINE_* environment variable, not {name!r}", field=name)
    value = (os.environ if env is None else env).get(name)
    return value or None


def section_settings(settings: Settings, name: str, cls: type[T]) -> T:
    """Read the ``[name]`` table into ``cls``, a frozen dataclass whose every field has
    a default: the one way feature packages read their settings. Unknown keys and
    values of the wrong type are refused, naming ``name.key``."""
    return _build_section(cls, settings.section(name), name)


def load_settings(
    path: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (``HOTLINE_CONFIG`` or ``config/hotline.toml``) and apply the
    environment. Raises :class:`ConfigError` naming the offending setting."""
    env = os.environ if env is None else env
    path = Path(path or env.get("HOTLINE_CONFIG") or DEFAULT_CONFIG_PATH)
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    sections = {
        name: dict(raw.pop(name, {}) or {}) for name in _SECTIONS
    }
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    extra = {k: v for k, v in raw.items() if isinstance(v, dict)}

    for var, section, key, kind in _ENV_OVERRIDES:
        if var in env:
            target = sections[section] if section else top
            target[key] = _coerce(env[var], kind, var)

    built: dict[str, Any] = {name: _build_section(cls, sections[name], name) for name, cls in _SECTIONS.items()}
    base = Settings()
    top_values: dict[str, Any] = {}
    for key, value in top.items():
        if key in _SECTIONS or key == "extra" or not hasattr(base, key):
            raise ConfigError(f"unknown setting {key!r}", field=key)
        default = getattr(base, key)
        kind = Path if isinstance(default, Path) else type(default)
        top_values[key] = _coerce(value, kind, key)
    if "config_dir" in top_values and "registry_path" not in top_values:
        top_values["registry_path"] = replace(base, config_dir=top_values["config_dir"]).config_file("hotlines.yaml")
    settings = replace(base, **built, **top_values, extra=extra)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.log_level.upper() not in _LOG_LEVELS:
        raise ConfigError(
            f"log_level must be one of {sorted(_LOG_LEVELS)}, got {settings.log_level!r}",
            field="log_level",
        )
    try:
        ZoneInfo(settings.timezone)
    except Exception:
        raise ConfigError(f"unknown time zone {settings.timezone!r}", field="timezone") from None
    for name, port in (("web.port", settings.web.port), ("agi.port", settings.agi.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{name} must be 0..65535, got {port}", field=name)
    _validate_web(settings.web)


def _validate_web(web: WebSettings) -> None:
    for proxy in web.trusted_proxies:
        try:
            ipaddress.ip_network(str(proxy), strict=False)
        except ValueError:
            raise ConfigError(
                f"web.trusted_proxies: {proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)",
                field="web.trusted_proxies",
            ) from None
    for name in ("signin_concurrency", "signin_backlog"):
        value = getattr(web, name)
        if not 0 <= value <= 1024 or (name == "signin_concurrency" and value == 0):
            raise ConfigError(f"web.{name} must be within {int(name == 'signin_concurrency')}..1024, got {value}",
                              field=f"web.{name}")
