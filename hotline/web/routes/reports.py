"""Supervisor reports as JSON, CSV or XLSX: call metrics and ticket/SLA metrics per
line, unit, agent and period (definitions in hotline.reports.metrics)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from hotline.errors import ValidationError
from hotline.reports import metrics, rates
from hotline.reports.export import to_csv, to_xlsx
from hotline.web.access import api_doc, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import query_bool
from hotline.web.util import json_response

QUERY = {
    "from": {"type": "string", "format": "date", "description": "first local day (default: 1st of this month)"},
    "to": {"type": "string", "format": "date", "description": "last local day, inclusive (default: today)"},
    "group": {"enum": list(metrics.GROUPS), "description": "per line, unit, agent or period bucket"},
    "line": {"type": "string", "description": "only this hotline number"},
    "format": {"enum": ["json", "csv", "xlsx"]},
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CALL_DEFINITIONS = {
    "offered": "进入队列的来电（queued_at 非空）",
    "answered": "坐席接通的来电",
    "abandoned": "接通前挂断（含短时放弃）",
    "short_abandoned": "等待不足5秒即挂断，单独列示",
    "connection_rate": "接通量 / 呼入量",
    "service_level_15s": "15秒内接通量 / 呼入量（分母为呼入量，非接通量）",
    "asa_seconds": "接通来电的平均等待时长",
    "aht_seconds": "接通来电的平均（通话 + 话后处理）时长",
}
TICKET_DEFINITIONS = {
    "cohort": "统计期内受理（created_at）的工单",
    "direct_answer_rate": "直接办结 / 受理量",
    "signed_on_time_rate": "统计期内开始计时的签收时限中按时签收（或按时退回）/ 已判定（按时+超时）",
    "completed_on_time_rate": "办理时限中按时回复 / 已判定（按时+超时）",
    "callback_rate": "已回访 / 应回访（回复审核通过）",
    "satisfied_rate": "（非常满意+满意+基本满意）/ 评价数",
}


async def _report(request: web.Request, kind: str) -> web.Response:
    rt = request.app[RUNTIME]
    q = request.query
    period = metrics.Period.parse(q.get("from"), q.get("to"), rt.settings.tz)
    group = q.get("group", "total")
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        raise ValidationError(f"参数 format 必须是 json、csv 或 xlsx，收到 {fmt!r}", field="format", value=fmt,
                              code="invalid_choice")
    fn = metrics.call_metrics if kind == "calls" else metrics.ticket_metrics
    rows = await fn(rt.pool, period, group, tz=rt.settings.timezone, hotline_number=q.get("line") or None)
    definitions = CALL_DEFINITIONS if kind == "calls" else TICKET_DEFINITIONS
    first, last = period.start.date().isoformat(), (period.end.date()).isoformat()
    name = f"{kind}-{group}-{first}"
    if fmt == "csv":
        return web.Response(body=to_csv(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "xlsx":
        notes = [f"统计期：{first} 至 {last}（不含）, 时区 {rt.settings.timezone}"] + [
            f"{k}: {v}" for k, v in definitions.items()]
        body = to_xlsx(rows, title=f"{kind}-{group}", notes=notes)
        return web.Response(body=body, content_type=XLSX,
                            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return json_response({"period": {"from": period.start, "to": period.end}, "group": group,
                          "definitions": definitions, "rows": rows})


@requires("supervisor", "admin")
@api_doc(tags=["reports"], query=QUERY, responses={200: "rows per group (JSON, CSV or XLSX)"})
async def calls_report(request: web.Request) -> web.Response:
    """Call metrics: offered, answered, abandoned, short abandons, connection rate, 15-s service level, ASA, AHT.

    Service level divides by offered calls (stated in `definitions` and in each row).
    """
    return await _report(request, "calls")


@requires("supervisor", "admin")
@api_doc(tags=["reports"], query=QUERY, responses={200: "rows per group (JSON, CSV or XLSX)"})
async def tickets_report(request: web.Request) -> web.Response:
    """Ticket and SLA metrics: created, direct-answer rate, dispatched, on-time rates, returns,
    extensions, reopens, callback rate, satisfaction distribution."""
    return await _report(request, "tickets")


RATES_QUERY = {**{k: v for k, v in QUERY.items() if k not in ("group", "line")},
               "group": {"enum": list(rates.RATE_GROUPS), "description": "per unit (default) or one total row"},
               "exemptions": {"type": "boolean", "description": "leave exempted tickets out (the assessment's figures)"}}


@requires("supervisor", "admin")
@api_doc(tags=["reports"], query=RATES_QUERY, responses={200: "the three rates per unit (JSON, CSV or XLSX)"})
async def rates_report(request: web.Request) -> web.Response:
    """The three rates per handling unit: response (on-time signing), resolution and satisfaction.

    Numerators and denominators are in `definitions` and docs/RATES.md.
    """
    rt = request.app[RUNTIME]
    q = request.query
    period = metrics.Period.parse(q.get("from"), q.get("to"), rt.settings.tz)
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        raise ValidationError(f"参数 format 必须是 json、csv 或 xlsx，收到 {fmt!r}", field="format", value=fmt,
                              code="invalid_choice")
    rows = await rates.three_rates(rt.pool, period, now=datetime.now(rt.settings.tz), group=q.get("group", "unit"),
                                   exemptions=query_bool(request, "exemptions"))
    first, last = period.start.date().isoformat(), period.end.date().isoformat()
    name = f"rates-{first}"
    if fmt == "csv":
        return web.Response(body=to_csv(rows), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "xlsx":
        notes = [f"统计期：{first} 至 {last}（不含）"] + [f"{k}: {v}" for k, v in rates.DEFINITIONS.items()]
        return web.Response(body=to_xlsx(rows, title="三率", notes=notes), content_type=XLSX,
                            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return json_response({"period": {"from": period.start, "to": period.end}, "definitions": rates.DEFINITIONS,
                          "rows": rows})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports/calls", calls_report)
    app.router.add_get("/api/v1/reports/tickets", tickets_report)
    app.router.add_get("/api/v1/reports/rates", rates_report)
