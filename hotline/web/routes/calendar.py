"""The working-day calendar: read, edit days and working hours (running SLA
deadlines are recomputed after every edit), and do the arithmetic."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

import asyncpg
from aiohttp import web

from hotline.auth import audit
from hotline.calendar.core import MAX_SPAN_DAYS
from hotline.calendar.store import set_day, set_hours
from hotline.errors import ValidationError
from hotline.sla.clocks import recompute_all
from hotline.sla.config import sla_config
from hotline.web.access import api_doc, current_user, requires
from hotline.web.keys import RUNTIME
from hotline.web.util import json_response, query_int, read_json

TAGS = ["calendar"]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"日期 day 必须是 YYYY-MM-DD，收到 {text!r}", field="day", value=text,
                              code="invalid_date") from None


@requires()
@api_doc(tags=TAGS, query={"year": {"type": "integer"}}, responses={200: "holidays, make-up days, hours"})
async def calendar(request: web.Request) -> web.Response:
    """A year's holidays and make-up working days (调休), the working hours, and whether the year is provisional."""
    year = query_int(request, "year", datetime.now(request.app[RUNTIME].settings.tz).year, low=1, high=9999)
    pool = request.app[RUNTIME].pool
    days = await pool.fetch(
        "SELECT day, kind, name, provisional FROM calendar_days WHERE day >= $1 AND day < $2 ORDER BY day",
        date(year, 1, 1), date(year + 1, 1, 1))
    meta = await pool.fetchrow("SELECT source, provisional, loaded_at FROM calendar_years WHERE year = $1", year)
    hours = await pool.fetch("SELECT opens, closes FROM calendar_hours ORDER BY opens")
    return json_response({
        "year": year, "loaded": meta is not None, "provisional": meta["provisional"] if meta else None,
        "source": meta["source"] if meta else None, "days": [dict(r) for r in days],
        "hours": [{"opens": r["opens"].strftime("%H:%M"), "closes": r["closes"].strftime("%H:%M")} for r in hours],
        "timezone": request.app[RUNTIME].settings.timezone,
    })


async def _recompute(request: web.Request, conn: asyncpg.Connection) -> int:
    rt = request.app[RUNTIME]
    return await recompute_all(conn, await rt.calendars.load(conn), rules=sla_config(rt.files))


@requires("admin", "supervisor")
@api_doc(tags=TAGS, body={"type": "object", "required": ["kind"], "properties": {
    "kind": {"enum": ["holiday", "workday", None], "description": "null: back to a normal day"},
    "name": {"type": "string"}}}, responses={200: "saved; running SLA deadlines recomputed"})
async def day_set(request: web.Request) -> web.Response:
    """Make a day a holiday or a make-up working day (or normal again); recomputes SLA deadlines."""
    body = await read_json(request)
    day = _day(request.match_info["day"])
    user = current_user(request)
    async with request.app[RUNTIME].pool.acquire() as conn:
        async with conn.transaction():
            await set_day(conn, day, body.get("kind"), str(body.get("name") or ""), user_id=user.id)
            await audit(conn, "calendar_changed", user=user, object_type="calendar_day", object_id=day.isoformat(),
                        detail={"kind": body.get("kind")})
        recomputed = await _recompute(request, conn)
    return json_response({"day": day.isoformat(), "kind": body.get("kind"), "clocks_recomputed": recomputed})


@requires("admin", "supervisor")
@api_doc(tags=TAGS, body={"type": "object", "required": ["windows"], "properties": {"windows": {
    "type": "array", "items": {"type": "object", "properties": {"opens": {"type": "string"},
                                                                 "closes": {"type": "string"}}}}}},
         responses={200: "saved; running SLA deadlines recomputed"})
async def hours_set(request: web.Request) -> web.Response:
    """Set the working-hour windows of every working day (e.g. 08:30-12:00, 13:30-17:30)."""
    body = await read_json(request)
    windows = body.get("windows")
    if not isinstance(windows, list):
        raise ValidationError(f"windows 必须是 {{opens, closes}} 的列表，收到 {windows!r}", field="windows",
                              value=windows, code="invalid_type")
    parsed = []
    for w in windows:
        try:
            parsed.append((time.fromisoformat(w["opens"]), time.fromisoformat(w["closes"])))
        except (TypeError, KeyError, ValueError):
            raise ValidationError(f"时段 {w!r} 须有 HH:MM 格式的 opens 和 closes", field="windows", value=w,
                                  code="invalid_format") from None
    async with request.app[RUNTIME].pool.acquire() as conn:
        async with conn.transaction():  # the audit row commits with the change
            await set_hours(conn, parsed)
            await audit(conn, "calendar_hours_changed", user=current_user(request), detail={"windows": windows})
        recomputed = await _recompute(request, conn)
    return json_response({"windows": windows, "clocks_recomputed": recomputed})


@requires()
@api_doc(tags=TAGS, query={
    "start": {"type": "string", "format": "date-time", "description": "local time if no offset"},
    "working_days": {"type": "number"}, "working_hours": {"type": "number"},
    "end": {"type": "string", "format": "date-time", "description": "with start: working time between"}},
    responses={200: "the deadline, or the working time between start and end"})
async def compute(request: web.Request) -> web.Response:
    """Calendar arithmetic: start + N working days/hours, or the working time between start and end."""
    rt = request.app[RUNTIME]
    cal = await rt.calendars.load(rt.pool)
    q = request.query

    def instant(key: str) -> datetime:
        try:
            value = datetime.fromisoformat(q[key])
        except (KeyError, ValueError):
            raise ValidationError(f"参数 {key} 必须是 ISO 8601 日期时间，收到 {q.get(key)!r}", field=key,
                                  value=q.get(key), code="invalid_date") from None
        return value if value.tzinfo else value.replace(tzinfo=cal.tz)

    def amount(key: str, most: float) -> float:
        try:
            value = float(q[key])
        except ValueError:
            raise ValidationError(f"参数 {key} 必须是数字，收到 {q[key]!r}", field=key, value=q[key],
                                  code="invalid_number") from None
        if not math.isfinite(value) or abs(value) > most:
            raise ValidationError(f"参数 {key} 须在 ±{most:g} 之内，收到 {q[key]!r}", field=key, value=q[key],
                                  code="out_of_range")
        return value

    start = instant("start")
    if "end" in q:
        end = instant("end")
        # a span of centuries would walk every day on the event loop: bounded like a deadline
        try:
            too_long = abs(end - start) > timedelta(days=MAX_SPAN_DAYS)
        except OverflowError:
            too_long = True
        if too_long:
            raise ValidationError(f"结束时间 end {q['end']!r} 距开始时间 start {q['start']!r} 超过 {MAX_SPAN_DAYS} 天",
                                  field="end", value=q["end"], code="out_of_range")
        spent = cal.between(start, end)
        return json_response({"working_hours": spent.total_seconds() / 3600, "working_days": spent / cal.day_length})
    key = "working_days" if "working_days" in q else "working_hours"
    try:
        if "working_days" in q:
            result = cal.add_working_days(start, amount("working_days", MAX_SPAN_DAYS))
        elif "working_hours" in q:
            result = cal.add_working_hours(start, amount("working_hours", MAX_SPAN_DAYS * 24))
        else:
            raise ValidationError("请给出 working_days、working_hours 或 end 之一", field="working_days",
                                  code="missing_field")
    except (ValueError, OverflowError) as exc:
        raise ValidationError(f"无法从 {q['start']!r} 计算 {key} {q[key]!r}：{exc}", field=key, value=q[key],
                              code="out_of_range") from None
    return json_response({"start": start.astimezone(cal.tz), "deadline": result.astimezone(cal.tz)})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/calendar", calendar)
    app.router.add_put("/api/v1/calendar/days/{day}", day_set)
    app.router.add_put("/api/v1/calendar/hours", hours_set)
    app.router.add_get("/api/v1/calendar/compute", compute)
