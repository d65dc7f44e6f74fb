"""Notifications (短信通知) through a configurable HTTP gateway: the acceptance receipt
with the ticket number, reminders to handling units before a deadline, the result to
the citizen. The outbox is the ``notifications`` table (migration 0083: receipts and
results are written by triggers in the transaction of the ticket change; reminders by
the job in jobs.py); the worker (worker.py) delivers with the same retry rules as the
upstream push (hotline.outbound)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hotline.config import Settings, section_settings
from hotline.errors import ConfigError

KINDS = ("receipt", "reminder", "result")
STAGE_ZH = {"sign": "签收", "handle": "办理", "reply": "回复审核", "callback": "回访"}
_FIELDS = {
    "receipt": {"number", "created_at"},
    "reminder": {"number", "stage", "deadline", "unit_name"},
    "result": {"number", "closed_at", "unit_name"},
}


@dataclass(frozen=True, slots=True)
class NotifySettings:
    #: the SMS gateway's endpoint (empty: notifications wait in the outbox, nothing is sent)
    url: str = ""
    timeout: float = 10.0
    #: refusals of one notification before it becomes a dead letter
    max_attempts: int = 5
    #: first wait in seconds after a failure, doubled each time up to backoff_max (as the upstream push)
    backoff_base: float = 30.0
    backoff_max: float = 1800.0
    batch_size: int = 20
    #: environment variable holding the key that signs requests (HMAC-SHA256); empty value: unsigned
    key_env: str = "HOTLINE_NOTIFY_KEY"
    #: remind the unit this many hours before a running deadline of these stages
    remind_before_hours: float = 4.0
    remind_stages: tuple[str, ...] = ("sign", "handle")
    #: texts; {number}, {created_at}, {stage}, {deadline}, {unit_name}, {closed_at} as listed per kind
    receipt_template: str = "【12345】您的诉求已受理，工单编号{number}。可凭工单编号和来电号码后四位查询办理进度。"
    reminder_template: str = "【12345】工单{number}的{stage}时限为{deadline}，请{unit_name}及时办理。"
    result_template: str = "【12345】您反映的问题（工单编号{number}）已由{unit_name}办理完毕，感谢您的反映。"

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def template(self, kind: str) -> str:
        return str(getattr(self, f"{kind}_template"))


def notify_settings(settings: Settings) -> NotifySettings:
    """``[notify]``, validated (a template naming an unknown field is refused at start)."""
    cfg = section_settings(settings, "notify", NotifySettings)
    if cfg.max_attempts < 1 or cfg.batch_size < 1:
        raise ConfigError("[notify] max_attempts and batch_size must be ≥ 1", field="notify")
    if cfg.backoff_base < 0 or cfg.backoff_max < cfg.backoff_base:
        raise ConfigError("[notify] needs 0 ≤ backoff_base ≤ backoff_max", field="notify.backoff_base")
    if cfg.url and not cfg.url.startswith(("http://", "https://")):
        raise ConfigError(f"[notify] url must be http(s)://, got {cfg.url!r}", field="notify.url")
    if cfg.key_env and not cfg.key_env.startswith("HOTLINE_"):
        raise ConfigError(f"[notify] key_env must name a HOTLINE_* environment variable, got {cfg.key_env!r}",
                          field="notify.key_env")
    unknown_stages = set(cfg.remind_stages) - set(STAGE_ZH)
    if unknown_stages:
        raise ConfigError(f"[notify] remind_stages: unknown {sorted(unknown_stages)}", field="notify.remind_stages")
    for kind in KINDS:
        names = {f for _, f, _, _ in string.Formatter().parse(cfg.template(kind)) if f}
        if not names <= _FIELDS[kind]:
            raise ConfigError(f"[notify] {kind}_template uses {sorted(names - _FIELDS[kind])}; "
                              f"it may use {sorted(_FIELDS[kind])}", field=f"notify.{kind}_template")
    return cfg


def _local(value: Any, tz: ZoneInfo) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def render(cfg: NotifySettings, kind: str, payload: dict[str, Any], tz: ZoneInfo) -> str:
    values = {k: _local(payload.get(k), tz) for k in _FIELDS[kind]}
    values["stage"] = STAGE_ZH.get(values.get("stage", ""), values.get("stage", ""))
    return cfg.template(kind).format(**values)
