"""Record builders shared by the aggregation tests."""

from __future__ import annotations

from typing import Any


def call_record(source_id: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    record = {
        "source_id": source_id, "version": version, "hotline_number": "12366",
        "caller_number": "13812345678", "state": "completed",
        "started_at": "2026-11-27T09:00:00+08:00", "answered_at": "2026-11-27T09:00:12+08:00",
        "ended_at": "2026-11-27T09:04:00+08:00", "region": "330902",
    }
    record.update(extra)
    return record


def ticket_record(source_id: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    record = {
        "source_id": source_id, "version": version, "hotline_number": "12366", "state": "dispatched",
        "created_at": "2026-11-27T09:05:00+08:00", "dispatched_at": "2026-11-27T09:30:00+08:00",
        "category": "tax/invoice", "unit_code": "tax", "region": "330902",
        "caller_number": "13812345678", "summary": "发票开具咨询",
    }
    record.update(extra)
    return record
