"""Working-day arithmetic on the real 2026 calendar (loaded from config/calendar)."""

from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest

from hotline.calendar import WorkCalendar, load_calendar, load_year_file, seed_years
from hotline.calendar.core import SHANGHAI
from hotline.calendar.store import CALENDAR_DIR, set_day, set_hours
from hotline.errors import ValidationError


def sh(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@pytest.fixture
async def cal(pool: asyncpg.Pool) -> WorkCalendar:
    async with pool.acquire() as conn:
        loaded = await seed_years(conn)
    assert loaded[2026] == 33 + 6  # 33 holiday days, 6 make-up working days
    return await load_calendar(pool)


def test_2026_file_matches_the_state_council_notice() -> None:
    data = load_year_file(CALENDAR_DIR / "2026.yaml")
    workdays = [d for d, kind, _ in data["days"] if kind == "workday"]
    assert workdays == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                        date(2026, 9, 20), date(2026, 10, 10)]
    assert all(d.weekday() >= 5 for d in workdays)
    holidays = {d for d, kind, _ in data["days"] if kind == "holiday"}
    assert {date(2026, 2, 15) + timedelta(days=i) for i in range(9)} <= holidays  # 春节 9 days
    assert {date(2026, 10, 1) + timedelta(days=i) for i in range(7)} <= holidays  # 国庆 7 days
    assert not data["provisional"]
    assert load_year_file(CALENDAR_DIR / "2027.yaml")["provisional"]


async def test_spring_festival_and_its_make_up_saturdays(cal: WorkCalendar) -> None:
    assert cal.is_working_day(date(2026, 2, 14)) and cal.is_working_day(date(2026, 2, 28))  # Saturdays
    assert not cal.is_working_day(date(2026, 2, 16))  # a Monday in the holiday
    # Friday 13 Feb 10:00 + 1 working day = the make-up Saturday, 10:00
    assert cal.add_working_days(sh(2026, 2, 13), 1) == sh(2026, 2, 14)
    # + 2 crosses the nine-day holiday: Tuesday 24 Feb (Monday 23 is still a holiday)
    assert cal.add_working_days(sh(2026, 2, 13), 2) == sh(2026, 2, 24)
    # Friday 27 Feb + 1 = Saturday 28 Feb (make-up), + 2 = Monday 2 March
    assert cal.add_working_days(sh(2026, 2, 27), 1) == sh(2026, 2, 28)
    assert cal.add_working_days(sh(2026, 2, 27), 2) == sh(2026, 3, 2)
    assert cal.between(sh(2026, 2, 13), sh(2026, 2, 24)) == 2 * cal.day_length


async def test_national_day_and_its_make_up_sunday_and_saturday(cal: WorkCalendar) -> None:
    assert cal.add_working_days(sh(2026, 9, 18), 1) == sh(2026, 9, 20)  # Sunday 20 Sep worked
    assert cal.add_working_days(sh(2026, 9, 24), 1) == sh(2026, 9, 28)  # 中秋 25-27
    assert cal.add_working_days(sh(2026, 9, 30), 1) == sh(2026, 10, 8)  # across 国庆 1-7
    assert cal.add_working_days(sh(2026, 10, 9), 1) == sh(2026, 10, 10)  # Saturday 10 Oct worked
    assert cal.add_working_days(sh(2026, 10, 9), 2) == sh(2026, 10, 12)
    assert cal.working_days_between(sh(2026, 9, 30), sh(2026, 10, 12)) == 4
    # a 15-working-day deadline from 28 Sep: 2 days before the holiday, 13 after
    assert cal.add_working_days(sh(2026, 9, 28), 15) == sh(2026, 10, 23)


async def test_working_hours_windows_and_asia_shanghai_day_boundaries(cal: WorkCalendar) -> None:
    # lunch break: 11:30 + 1 h = 14:00
    assert cal.add_working_hours(sh(2026, 3, 3, 11, 30), 1) == sh(2026, 3, 3, 14, 0)
    # after hours: the clock starts when the next window opens
    assert cal.add_working_hours(sh(2026, 2, 13, 18, 0), 1) == sh(2026, 2, 14, 9, 30)
    # 2026-02-13 23:00 UTC is already Saturday 14 Feb 07:00 in Shanghai, a make-up working day
    start = datetime(2026, 2, 13, 23, 0, tzinfo=UTC)
    assert cal.add_working_hours(start, 1) == datetime(2026, 2, 14, 1, 30, tzinfo=UTC)
    # 16:30 UTC Monday = 00:30 Tuesday in Shanghai: one working day ends Tuesday 17:30
    assert cal.add_working_days(datetime(2026, 3, 2, 16, 30, tzinfo=UTC), 1) == sh(2026, 3, 3, 17, 30)
    # a deadline ending exactly at closing time stays on that day
    assert cal.add(sh(2026, 3, 3, 17, 0), timedelta(minutes=30)) == sh(2026, 3, 3, 17, 30)
    assert cal.between(sh(2026, 3, 3, 17, 30), sh(2026, 3, 4, 8, 30)) == timedelta(0)
    with pytest.raises(ValueError):
        cal.add(datetime(2026, 3, 3, 10), timedelta(hours=1))  # naive datetimes are refused


async def test_editing_the_calendar_changes_the_arithmetic(pool: asyncpg.Pool, cal: WorkCalendar) -> None:
    async with pool.acquire() as conn:
        await set_day(conn, date(2026, 12, 31), "holiday", "临时调整")
        with pytest.raises(ValidationError):
            await set_day(conn, date(2026, 12, 30), "workday", "")  # a Wednesday
        with pytest.raises(ValidationError):
            await set_hours(conn, [(time(9), time(12)), (time(11), time(17))])
        await set_hours(conn, [(time(9), time(17))])
    edited = await load_calendar(pool)
    assert edited.day_length == timedelta(hours=8)
    assert edited.add_working_days(sh(2026, 12, 30), 1) == sh(2027, 1, 4)  # 31 Dec and 1 Jan off
    async with pool.acquire() as conn:
        assert await seed_years(conn) == {2026: 0, 2027: 0}  # loaded years are not overwritten


def test_add_and_between_agree_with_a_minute_by_minute_walk() -> None:
    import random

    overrides = {}
    for year in (2026, 2027):
        for d, kind, _ in load_year_file(CALENDAR_DIR / f"{year}.yaml")["days"]:
            overrides[d] = kind == "workday"
    cal = WorkCalendar(overrides=overrides)

    def walk(a: datetime, b: datetime) -> timedelta:
        total, x, step = timedelta(0), a, timedelta(minutes=1)
        while x < b:
            local = x.astimezone(SHANGHAI)
            if cal.is_working_day(local.date()) and any(o <= local.time() < c for o, c in cal.windows):
                total += step
            x += step
        return total

    rng = random.Random(2026)
    for i in range(300):
        start = datetime(2026, 1, 1, tzinfo=SHANGHAI) + timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
        amount = timedelta(minutes=rng.randrange(0, 20 * 450))
        assert cal.between(start, cal.add(start, amount)) == amount
        if i < 25:
            end = start + timedelta(minutes=rng.randrange(0, 5 * 24 * 60))
            assert cal.between(start, end) == walk(start, end)
