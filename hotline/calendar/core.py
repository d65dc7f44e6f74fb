"""Working-time arithmetic over a calendar: pure Python, no I/O.

A day is a working day when the calendar says so (holiday → off, 调休 workday →
on), otherwise Monday-Friday. Working time runs only inside the working-hour
windows of working days, in local time. "N working days" is N times the length
of a working day of working time, so a ticket dispatched on Friday 10:00 with
one working day is due on the next working day at 10:00; one dispatched after
hours starts its clock when the next window opens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_WINDOWS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
#: a deadline further than this many days ahead is refused as a configuration error
MAX_SPAN_DAYS = 3660


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    #: day → True (working: 调休 workday) / False (holiday); absent days follow Mon-Fri
    overrides: Mapping[date, bool] = field(default_factory=dict)
    windows: tuple[tuple[time, time], ...] = DEFAULT_WINDOWS
    tz: ZoneInfo = SHANGHAI
    _day_length: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_day_length", sum((_span(o, c) for o, c in self.windows), timedelta()))

    def is_working_day(self, day: date) -> bool:
        flag = self.overrides.get(day)
        return flag if flag is not None else day.weekday() < 5

    @property
    def day_length(self) -> timedelta:
        """Working time in one working day."""
        return self._day_length

    def _windows_on(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        return [(datetime.combine(day, o, self.tz), datetime.combine(day, c, self.tz)) for o, c in self.windows]

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when ``amount`` of working time has elapsed after ``start``."""
        _aware(start)
        if amount <= timedelta(0):
            return start
        local = start.astimezone(self.tz)
        day, remaining, first = local.date(), amount, True
        for _ in range(MAX_SPAN_DAYS):
            if self.is_working_day(day):
                if not first and remaining > self._day_length:
                    remaining -= self._day_length  # a whole working day: no need to walk its windows
                else:
                    for opens, closes in self._windows_on(day):
                        begin = max(opens, local)
                        if begin >= closes:
                            continue
                        available = closes - begin
                        if remaining <= available:
                            return begin + remaining
                        remaining -= available
            first = False
            day += timedelta(days=1)
        raise ValueError(f"no working time left within {MAX_SPAN_DAYS} days of {start.isoformat()}")

    def add_working_days(self, start: datetime, days: float) -> datetime:
        return self.add(start, self.day_length * days)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        return self.add(start, timedelta(hours=hours))

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time elapsed from ``start`` to ``end`` (zero when end <= start)."""
        _aware(start)
        _aware(end)
        if end <= start:
            return timedelta(0)
        a, b = start.astimezone(self.tz), end.astimezone(self.tz)
        total, day, last = timedelta(0), a.date(), b.date()
        while day <= last:
            if day != a.date() and day != last:
                if self.is_working_day(day):
                    total += self._day_length  # a whole working day in between
            else:
                for opens, closes in self._windows_on(day):
                    lo, hi = max(opens, a), min(closes, b)
                    if hi > lo:
                        total += hi - lo
            day += timedelta(days=1)
        return total

    def working_days_between(self, start: datetime, end: datetime) -> float:
        return self.between(start, end) / self.day_length

    def next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day


def _span(opens: time, closes: time) -> timedelta:
    return datetime.combine(date.min, closes) - datetime.combine(date.min, opens)


def _aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; pass an aware datetime")
