"""Settings of the call flows: the ``[calls]`` table of ``config/hotline.toml``."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hotline.config import Settings, read_secret, section_settings
from hotline.errors import ConfigError

EXPERT_FALLBACKS = ("queue", "callback")


@dataclass(frozen=True, slots=True)
class CallSettings:
    #: a caller with an open ticket opened within this many days is a repeat caller
    repeat_window_days: int = 30
    #: when no expert seat is free: "queue" (wait in the line's expert pool) or "callback" (ticket)
    expert_fallback: str = "queue"
    #: seconds an expert seat's phone rings before the call goes to the fallback
    expert_dial_timeout: int = 30
    #: seconds a dual line's call waits for its skill before any 12345 agent takes it
    skill_overflow_seconds: int = 60
    #: a flow gives the database this long, then routes from memory and journals the record
    db_timeout: float = 2.0
    #: after a database failure, flows go straight to the journal for this long
    db_retry_seconds: float = 2.0
    #: the FastAGI node's own connection pool (so web load never starves call routing)
    pool_min: int = 5
    pool_max: int = 20
    #: how often the FastAGI node tries to replay the journal
    journal_replay_interval: float = 5.0
    #: how long a replayed operation whose call is not in the database yet (its start in
    #: another node's journal) waits for it before it is kept in rejected.jsonl
    journal_wait_seconds: float = 3600.0
    #: sound files the dialplan plays (without extension)
    blocked_sound: str = "hotline/blocked"
    closed_sound_prefix: str = "hotline/closed-"
    callback_sound: str = "hotline/expert-callback"
    #: the FastAGI URL the generated dialplan calls; empty: agi://<agi.host>:<agi.port>
    agi_url: str = ""
    #: Asterisk Manager Interface used to move a live channel on a console transfer
    ami_host: str = ""
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: str = ""  # prefer HOTLINE_AMI_SECRET
    ami_timeout: float = 3.0
    #: seconds a supervisor's seat phone rings when they ask to monitor a call (监听)
    monitor_ring_seconds: int = 30
    #: seconds of after-call work (话后处理): the queues' wrapuptime, and when the
    #: telephony service returns a seat from after_call to ready
    wrapup_seconds: int = 10
    #: how often the telephony service makes queue members agree with seat states
    reconcile_interval: float = 30.0
    #: call recording (全程录音): the absolute directory the PBX writes recordings to
    #: (MixMonitor in the generated dialplan) and this node reads them from: the same
    #: path on the PBX host and the node (one host, or shared storage). Empty: no recording
    recordings_dir: str = ""
    #: recordings older than this many days are deleted (a daily job, whole UTC days);
    #: 0: kept until the storage's own retention removes them
    recordings_keep_days: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> CallSettings:
        result = section_settings(settings, "calls", cls)
        secret = read_secret("HOTLINE_AMI_SECRET")
        if secret:
            result = replace(result, ami_secret=secret)
        if result.expert_fallback not in EXPERT_FALLBACKS:
            raise ConfigError(
                f"calls.expert_fallback must be one of {EXPERT_FALLBACKS}, got {result.expert_fallback!r}",
                field="calls.expert_fallback",
            )
        if result.wrapup_seconds < 0:
            raise ConfigError(f"calls.wrapup_seconds must be >= 0, got {result.wrapup_seconds}",
                              field="calls.wrapup_seconds")
        if not 2 <= result.monitor_ring_seconds <= 120:
            raise ConfigError(f"calls.monitor_ring_seconds must be 2..120, got {result.monitor_ring_seconds}",
                              field="calls.monitor_ring_seconds")
        if result.reconcile_interval <= 0:
            raise ConfigError(f"calls.reconcile_interval must be > 0, got {result.reconcile_interval}",
                              field="calls.reconcile_interval")
        if result.recordings_keep_days < 0:
            raise ConfigError(f"calls.recordings_keep_days must be >= 0, got {result.recordings_keep_days}",
                              field="calls.recordings_keep_days")
        if result.recordings_dir and not result.recordings_dir.startswith("/"):
            raise ConfigError(f"calls.recordings_dir must be an absolute path (the PBX writes there), "
                              f"got {result.recordings_dir!r}", field="calls.recordings_dir")
        if any(c in result.recordings_dir for c in ",;()$\"\\\n"):
            raise ConfigError(f"calls.recordings_dir cannot contain , ; ( ) $ quotes or backslashes "
                              f"(it is written into the dialplan), got {result.recordings_dir!r}",
                              field="calls.recordings_dir")
        return result

    def agi_base(self, settings: Settings) -> str:
        if self.agi_url:
            return self.agi_url.rstrip("/")
        host = settings.agi.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"agi://{host}:{settings.agi.port}"
