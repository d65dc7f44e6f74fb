"""Data-quality reports for supervisors (JSON or CSV), stored daily and on demand."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from hotline.errors import NotFound, ValidationError
from hotline.quality.jobs import generate
from hotline.quality.report import to_csv
from hotline.web.access import api_doc, requires
from hotline.web.keys import RUNTIME
from hotline.web.params import query_bool
from hotline.web.util import json_response, read_json


def _day(text: str | None, field: str = "day") -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field} 必须是日期（如 2026-11-30），收到 {text!r}", field=field, value=text,
                              code="invalid_date") from None


def _respond(request: web.Request, reports: list[dict]) -> web.Response:
    if request.query.get("format") == "csv":
        name = "quality.csv" if len(reports) != 1 else f"quality-{reports[0]['source']}-{reports[0]['day']}.csv"
        return web.Response(text="\ufeff" + to_csv(reports), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return json_response({"items": reports})


@requires("supervisor", "admin")
@api_doc(
    tags=["quality"],
    query={"source": {"type": "string"}, "from": {"type": "string", "format": "date"},
           "to": {"type": "string", "format": "date"}, "format": {"type": "string", "enum": ["json", "csv"]}},
    responses={200: "stored reports (JSON, or CSV with one metric per row)"},
)
async def reports(request: web.Request) -> web.Response:
    """List stored data-quality reports per source and day."""
    pool = request.app[RUNTIME].pool
    rows = await pool.fetch(
        """SELECT report FROM quality_reports
            WHERE ($1::text IS NULL OR source = $1) AND ($2::date IS NULL OR day >= $2)
              AND ($3::date IS NULL OR day <= $3)
            ORDER BY day DESC, source LIMIT 400""",
        request.query.get("source"), _day(request.query.get("from"), "from"), _day(request.query.get("to"), "to"),
    )
    return _respond(request, [r["report"] for r in rows])


@requires("supervisor", "admin")
@api_doc(tags=["quality"],
         query={"format": {"type": "string", "enum": ["json", "csv"]},
                "refresh": {"type": "boolean", "description": "compute again now"}},
         responses={200: "the report", 404: "unknown source"})
async def report(request: web.Request) -> web.Response:
    """One source's data-quality report for one day (computed when not stored yet)."""
    runtime = request.app[RUNTIME]
    source = request.match_info["source"]
    day = _day(request.match_info["day"])
    assert day is not None
    if not await runtime.pool.fetchval("SELECT 1 FROM ingest_sources WHERE code = $1", source):
        raise NotFound(f"没有数据来源 {source!r}", field="source", value=source)
    stored = None
    if not query_bool(request, "refresh"):
        stored = await runtime.pool.fetchval(
            "SELECT report FROM quality_reports WHERE source = $1 AND day = $2", source, day)
    return _respond(request, [stored] if stored else await generate(runtime, day, [source]))


@requires("supervisor", "admin")
@api_doc(tags=["quality"],
         body={"type": "object", "required": ["day"],
               "properties": {"day": {"type": "string", "format": "date"}, "source": {"type": "string"}}},
         responses={200: "the reports generated"})
async def generate_now(request: web.Request) -> web.Response:
    """Generate (or regenerate) the reports of a day on demand."""
    body = await read_json(request)
    day = _day(body.get("day"))
    if day is None:
        raise ValidationError("请填写日期 day", field="day", value=None, code="missing_field")
    source = body.get("source")
    runtime = request.app[RUNTIME]
    if source is not None and not await runtime.pool.fetchval("SELECT 1 FROM ingest_sources WHERE code = $1",
                                                               source):
        raise NotFound(f"没有数据来源 {source!r}", field="source", value=source)
    return json_response({"items": await generate(runtime, day, [source] if source else None)})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/quality/reports", reports)
    app.router.add_post("/api/v1/quality/reports", generate_now)
    app.router.add_get("/api/v1/quality/reports/{source}/{day}", report)
