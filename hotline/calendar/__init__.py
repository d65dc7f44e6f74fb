"""The working-day calendar (public holidays and 调休 make-up working days) and
working-time arithmetic in the hotline's time zone (Asia/Shanghai)."""

from hotline.calendar.core import WorkCalendar
from hotline.calendar.store import CalendarStore, load_calendar, load_year_file, seed_years

__all__ = ["CalendarStore", "WorkCalendar", "load_calendar", "load_year_file", "seed_years"]
