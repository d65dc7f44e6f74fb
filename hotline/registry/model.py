"""The hotline registry: 12345 and the legacy lines, as typed, frozen records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    PLATFORM = "platform"  # 12345 itself
    MERGED = "merged"  # 整体并入
    DUAL = "dual"  # 双号并行
    SUBCENTER = "subcenter"  # 分中心


PLATFORM_NUMBER = "12345"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class HoursWindow:
    """Open on ``days`` (0 = Monday) from ``open`` to ``close`` (local time)."""

    days: frozenset[int]
    open: time
    close: time

    def contains(self, moment: datetime) -> bool:
        return moment.weekday() in self.days and self.open <= moment.time() < self.close

    def to_json(self) -> dict[str, Any]:
        return {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "open": self.open.strftime("%H:%M"),
            "close": self.close.strftime("%H:%M"),
        }


@dataclass(frozen=True, slots=True)
class ServiceHours:
    """7×24 when ``windows`` is empty; otherwise open inside any window."""

    windows: tuple[HoursWindow, ...] = ()

    @property
    def always(self) -> bool:
        return not self.windows

    def is_open(self, moment: datetime) -> bool:
        """``moment`` must already be in the hotline's time zone."""
        return self.always or any(w.contains(moment) for w in self.windows)

    def to_json(self) -> Any:
        return "7x24" if self.always else [w.to_json() for w in self.windows]


@dataclass(frozen=True, slots=True)
class Hotline:
    number: str
    name: str
    department: str
    unit: str
    mode: Mode
    mode_basis: str
    queue: str
    skill: str
    announcement: str | None = None
    expert_pool: str | None = None
    dial_target: str | None = None
    no_answer_timeout: int | None = None
    service_hours: ServiceHours = field(default_factory=ServiceHours)

    @property
    def mode_confirmed(self) -> bool:
        """False for placeholder modes (``mode_basis`` starting with ``sample``)."""
        return not self.mode_basis.lower().startswith("sample")

    def to_json(self, *, internal: bool = True) -> dict[str, Any]:
        """The public view omits PBX internals (queues, pools, dial strings)."""
        data: dict[str, Any] = {
            "number": self.number,
            "name": self.name,
            "department": self.department,
            "unit": self.unit,
            "mode": self.mode.value,
            "mode_basis": self.mode_basis,
            "mode_confirmed": self.mode_confirmed,
            "service_hours": self.service_hours.to_json(),
        }
        if internal:
            data.update(
                queue=self.queue,
                skill=self.skill,
                announcement=self.announcement,
                expert_pool=self.expert_pool,
                dial_target=self.dial_target,
                no_answer_timeout=self.no_answer_timeout,
            )
        return data


@dataclass(frozen=True, slots=True)
class Registry:
    lines: tuple[Hotline, ...]

    def __iter__(self) -> Iterator[Hotline]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def by_number(self) -> Mapping[str, Hotline]:
        return {line.number: line for line in self.lines}

    def get(self, number: str) -> Hotline | None:
        for line in self.lines:
            if line.number == number:
                return line
        return None

    @property
    def platform(self) -> Hotline:
        line = self.get(PLATFORM_NUMBER)
        if line is None:  # the loader refuses a registry without 12345
            raise LookupError(PLATFORM_NUMBER)
        return line

    def counts(self) -> dict[str, int]:
        result = {mode.value: 0 for mode in Mode}
        for line in self.lines:
            result[line.mode.value] += 1
        return result
