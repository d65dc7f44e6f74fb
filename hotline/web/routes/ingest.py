"""The ingest API for sub-centres (signed batches) and the quarantine for staff.

``POST /api/v1/ingest/{calls|tickets}`` does not use browser sessions: each request
carries its own HMAC-SHA256 signature by the sending source (see
:mod:`hotline.ingest.signing`), checked here before anything is read from the
body into the database.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime

from aiohttp import web

from hotline.auth import audit
from hotline.errors import (
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthenticated,
    ValidationError,
)
from hotline.ingest import metrics
from hotline.ingest.config import IngestSettings, ingest_settings
from hotline.ingest.formats import parse_body
from hotline.ingest.keys import fingerprint, get_source, list_sources, load_key, load_previous_key
from hotline.ingest.ratelimit import RateLimiter
from hotline.ingest.schema import KINDS, schema_document
from hotline.ingest.signing import SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER, verify
from hotline.ingest.store import discard, ingest_batch, list_quarantine, reprocess, reprocess_open
from hotline.web.access import api_doc, current_user, public, requires
from hotline.web.keys import RUNTIME
from hotline.web.util import json_response, query_int, read_capped, read_json

log = logging.getLogger(__name__)


class _State:
    """Per-app ingest state: settings (read on first use, when the runtime exists) and
    the per-source rate limiter of this node."""

    def __init__(self) -> None:
        self.settings: IngestSettings | None = None
        self.limiter: RateLimiter | None = None

    def get(self, request: web.Request) -> tuple[IngestSettings, RateLimiter]:
        if self.settings is None or self.limiter is None:
            self.settings = ingest_settings(request.app[RUNTIME].settings)
            self.limiter = RateLimiter(burst=self.settings.rate_burst)
        return self.settings, self.limiter


STATE = web.AppKey("ingest_state", _State)


class BadSignature(Unauthenticated):
    code = "bad_signature"


class StaleTimestamp(Unauthenticated):
    code = "stale_timestamp"


#: verified against when the source or its key is unknown, so that case costs the same
_NO_KEY = "no-key:" + "0" * 43


def _refuse(outcome: str, exc: Exception, verified_source: str | None = None) -> Exception:
    """Count a refusal: labelled with the source only once its signature held (a label
    per claimed name would let anyone grow the metrics without bound)."""
    metrics.REQUESTS.labels(verified_source or metrics.UNVERIFIED, outcome).inc()
    return exc


@public  # sub-centre systems, not browsers: every request carries its own HMAC signature, verified below
@api_doc(
    tags=["ingest"],
    body={"type": "object", "properties": {"records": {"type": "array", "maxItems": 5000}},
          "description": "or text/csv with a header row; see docs/INGEST.md"},
    responses={200: "per-record results: accepted / updated / duplicate / rejected",
               400: "malformed body", 401: "not signed by a registered source with its key (one message "
               "whichever it is), or a stale timestamp",
               413: "body or batch too large", 429: "rate limited"},
)
async def ingest(request: web.Request) -> web.Response:
    """Receive a signed batch of call or ticket records from a sub-centre.

    Headers X-Hotline-Source, X-Hotline-Timestamp and X-Hotline-Signature
    (v1=hex HMAC-SHA256 over method, path, timestamp and the body's SHA-256)."""
    runtime = request.app[RUNTIME]
    cfg, limiter = request.app[STATE].get(request)
    kind = request.match_info["kind"]
    code = request.headers.get(SOURCE_HEADER, "")
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    sent = request.headers.get(SIGNATURE_HEADER, "")
    if not code or not stamp or not sent:
        raise _refuse("unsigned", BadSignature(
            f"签名请求须带 {SOURCE_HEADER}、{TIMESTAMP_HEADER} 和 {SIGNATURE_HEADER} 请求头"))
    body = await read_capped(request, cfg.max_body_bytes)
    # The signature is checked first: until it holds, the source is only a claim, so
    # it names no metric and uses up no quota, and every refusal reads the same.
    source = await get_source(runtime.pool, code)
    key = load_key(runtime.settings, code) if source is not None and source.active else None
    if source is not None and key is not None and source.key_fingerprint \
            and fingerprint(key) != source.key_fingerprint:
        log.error("ingest key of source %s on this node does not match its registered fingerprint", code)
        key = None
    signed_ok = verify(key or _NO_KEY, request.method, request.path_qs, stamp, body, sent)
    if not signed_ok and key is not None and source is not None \
            and source.in_overlap(cfg.key_overlap_minutes, datetime.now(UTC)):
        previous = load_previous_key(runtime.settings, code)  # the sub-centre has not switched yet
        signed_ok = previous is not None and verify(previous, request.method, request.path_qs, stamp, body, sent)
        if signed_ok:
            log.info("ingest source %s signed with its previous key (the overlap after a rotation)", code)
    if source is None or key is None or not signed_ok:
        raise _refuse("bad_signature", BadSignature(
            "请求未由已登记的来源以其当前密钥签名", field=SIGNATURE_HEADER))
    try:
        signed = int(stamp)
    except ValueError:
        raise _refuse("bad_timestamp", StaleTimestamp(
            f"{TIMESTAMP_HEADER} 必须是 Unix 秒数，收到 {stamp!r}", field=TIMESTAMP_HEADER), code) from None
    skew = time.time() - signed
    if math.fabs(skew) > cfg.replay_window:
        raise _refuse("stale_timestamp", StaleTimestamp(
            f"时间戳与服务器时钟相差 {skew:+.0f} 秒，允许范围为 ±{cfg.replay_window} 秒",
            field=TIMESTAMP_HEADER), code)
    wait = limiter.take(code, source.rate_per_minute)
    if wait > 0:
        metrics.REQUESTS.labels(code, "rate_limited").inc()
        raise TooManyRequests(f"来源 {code} 超过每分钟 {source.rate_per_minute} 次请求的限额",
                              retry_after=math.ceil(wait))
    try:
        fmt, records = parse_body(body, request.headers.get("Content-Type", ""),
                                  max_records=cfg.max_batch_records)
    except ValidationError:
        metrics.REQUESTS.labels(code, "malformed").inc()
        raise
    except PayloadTooLarge:
        metrics.REQUESTS.labels(code, "too_many_records").inc()
        raise
    response, replayed = await ingest_batch(
        runtime.pool, source, kind, records, signature=sent,
        signed_at=datetime.fromtimestamp(signed, UTC), fmt=fmt,
    )
    return json_response(response, headers={"X-Hotline-Replayed": "1"} if replayed else None)


@public  # the published record schema: no data, needed by sub-centre developers
@api_doc(tags=["ingest"], responses={200: "fields per kind"})
async def schema(request: web.Request) -> web.Response:
    """The published record schema of the ingest API."""
    return json_response(schema_document())


@requires("supervisor", "admin")
@api_doc(tags=["ingest"], responses={200: "registered sources (keys are never shown)"})
async def sources(request: web.Request) -> web.Response:
    """List the ingest sources."""
    return json_response({"items": [s.to_json() for s in await list_sources(request.app[RUNTIME].pool)]})


@requires("supervisor", "admin")
@api_doc(
    tags=["ingest"],
    query={"source": {"type": "string"}, "kind": {"type": "string", "enum": list(KINDS)},
           "status": {"type": "string", "enum": ["open", "reprocessed", "superseded", "discarded"]},
           "limit": {"type": "integer"}, "before": {"type": "integer", "description": "page: ids below this"}},
    responses={200: "quarantined records with every reason"},
)
async def quarantine_list(request: web.Request) -> web.Response:
    """List quarantined (rejected) records with their reasons."""
    pool = request.app[RUNTIME].pool
    items = await list_quarantine(
        pool, source=request.query.get("source"), kind=request.query.get("kind"),
        status=request.query.get("status", "open"), limit=query_int(request, "limit", 100) or 100,
        before=query_int(request, "before", None, high=2**62),
    )
    await audit(pool, "quarantine_viewed", user=current_user(request), object_type="ingest_quarantine",
                detail={"count": len(items), "source": request.query.get("source")}, remote_addr=request.remote)
    return json_response({"items": items, "next_before": items[-1]["id"] if items else None})


def _qid(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise NotFound(f"没有隔离记录 {request.match_info['id']!r}", field="id") from None


@requires("supervisor", "admin")
@api_doc(
    tags=["ingest"],
    body={"type": "object", "properties": {"record": {"type": "object",
          "description": "the corrected record (omit to retry the stored one)"}}},
    responses={200: "reprocessed, or still open with the new reasons", 409: "not open"},
)
async def quarantine_reprocess(request: web.Request) -> web.Response:
    """Re-process one quarantined record, as stored or corrected."""
    pool = request.app[RUNTIME].pool
    body = await read_json(request) if request.can_read_body else {}
    record = body.get("record")
    if record is not None and not isinstance(record, dict):
        raise ValidationError(f"record 必须是 JSON 对象，收到 {type(record).__name__} 类型的值", field="record")
    result = await reprocess(pool, _qid(request), record=record, user=current_user(request),
                             remote_addr=request.remote)
    return json_response(result)


@requires("supervisor", "admin")
@api_doc(
    tags=["ingest"],
    body={"type": "object", "properties": {"source": {"type": "string"},
                                           "kind": {"type": "string", "enum": list(KINDS)}}},
    responses={200: "how many landed and how many are still open"},
)
async def quarantine_reprocess_all(request: web.Request) -> web.Response:
    """Re-process every open quarantined record (after a fix of reference data)."""
    pool = request.app[RUNTIME].pool
    body = await read_json(request) if request.can_read_body else {}
    user = current_user(request)
    # each entry's re-processing is audited in its own transaction; the summary says what was asked
    result = await reprocess_open(pool, source=body.get("source"), kind=body.get("kind"), user=user,
                                  remote_addr=request.remote)
    await audit(pool, "quarantine_reprocessed_all", user=user, object_type="ingest_quarantine",
                detail={k: result[k] for k in ("tried", "reprocessed", "still_open")}, remote_addr=request.remote)
    return json_response(result)


@requires("supervisor", "admin")
@api_doc(tags=["ingest"], body={"type": "object", "properties": {"note": {"type": "string"}},
                                "required": ["note"]},
         responses={200: "discarded", 409: "not open"})
async def quarantine_discard(request: web.Request) -> web.Response:
    """Discard a quarantined record that will never be fixed (with a note)."""
    pool = request.app[RUNTIME].pool
    body = await read_json(request)
    note = body.get("note")
    if not isinstance(note, str) or not note.strip():
        raise ValidationError(f"请填写说明原因的备注 note，收到 {note!r}", field="note")
    await discard(pool, _qid(request), user=current_user(request), note=note.strip(), remote_addr=request.remote)
    return json_response({"id": _qid(request), "status": "discarded"})


def setup(app: web.Application) -> None:
    app[STATE] = _State()
    app.router.add_post("/api/v1/ingest/{kind:calls|tickets}", ingest)
    app.router.add_get("/api/v1/ingest/schema", schema)
    app.router.add_get("/api/v1/ingest/sources", sources)
    app.router.add_get("/api/v1/ingest/quarantine", quarantine_list)
    app.router.add_post("/api/v1/ingest/quarantine/reprocess", quarantine_reprocess_all)
    app.router.add_post("/api/v1/ingest/quarantine/{id}/reprocess", quarantine_reprocess)
    app.router.add_post("/api/v1/ingest/quarantine/{id}/discard", quarantine_discard)
