"""Request bodies of the ingest API: a JSON object ``{"records": [...]}`` or CSV with
a header row naming the fields (UTF-8, optional BOM; an empty cell is a missing value)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hotline.errors import PayloadTooLarge, ValidationError


class MalformedBody(ValidationError):
    code = "malformed_body"


class TooManyRecords(PayloadTooLarge):
    code = "too_many_records"


def parse_body(body: bytes, content_type: str, *, max_records: int) -> tuple[str, list[Any]]:
    """``(format, records)``; a body that cannot be read at all is refused as a whole."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        records = _csv(body)
        fmt = "csv"
    elif ctype in ("application/json", ""):
        records = _json(body)
        fmt = "json"
    else:
        raise ValidationError(
            f"Content-Type 必须是 application/json 或 text/csv，收到 {content_type!r}", field="Content-Type"
        )
    if not records:
        raise MalformedBody("这批数据没有记录", field="records")
    if len(records) > max_records:
        raise TooManyRecords(
            f"每批最多 {max_records} 条记录，这批有 {len(records)} 条",
            field="records", limit=max_records,
        )
    return fmt, records


def _json(body: bytes) -> list[Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(f"请求体不是有效的 JSON：{exc}", field="body") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise MalformedBody('请求体必须是 JSON 对象 {"records": [...]}', field="records")
    records: list[Any] = data["records"]
    return records


def _csv(body: bytes) -> list[Any]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"CSV 不是 UTF-8 编码：{exc}", field="body") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise MalformedBody(f"无法读取 CSV：{exc}", field="body") from None
    if not rows or not any(h.strip() for h in rows[0]):
        raise MalformedBody("CSV 须有一行表头写明字段名", field="body")
    header = [h.strip() for h in rows[0]]
    records: list[Any] = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            records.append({"_csv_error": f"row has {len(row)} cells, the header has {len(header)}",
                            **{h: v for h, v in zip(header, row, strict=False)}})
            continue
        records.append({h: (v if v.strip() != "" else None) for h, v in zip(header, row, strict=True)})
    return records
