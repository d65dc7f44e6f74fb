"""The one place personal data is masked for roles that do not need it: phone
numbers (138****5678, :func:`hotline.phone.mask`), names (张**), and whole records
(the change feed, screen-pops) with both at any depth."""

from __future__ import annotations

from typing import Any

from hotline.phone import mask

__all__ = ["mask", "mask_data", "mask_name"]

_PHONE_KEYS = frozenset({"caller_number", "caller_raw", "contact_number", "contact_phone", "phone",
                         "callback_number"})
_NAME_KEYS = frozenset({"caller_name", "contact_name", "citizen_name"})


def mask_name(name: str | None) -> str:
    """A person's name with all but the first character masked: 张三丰 → 张**."""
    if not name:
        return ""
    return name[:1] + "*" * (len(name) - 1)


def mask_data(data: dict[str, Any]) -> dict[str, Any]:
    """The record with callers' numbers and names masked at any depth (nested objects
    and lists, as in a ticket's callers or a merged record)."""
    return {key: _masked(key, value) for key, value in data.items()}


def _masked(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return mask_data(value)
    if isinstance(value, list):
        return [_masked(key, item) for item in value]
    if isinstance(value, str) and value:
        if key in _PHONE_KEYS or key.endswith(("_phone", "_number")) and key != "hotline_number":
            return mask(value)
        if key in _NAME_KEYS:
            return mask_name(value)
    return value
