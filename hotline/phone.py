"""Phone numbers: one normaliser and one mask for the whole system.

Caller numbers arrive as Asterisk presents them: ``+8613812345678``,
``008613812345678``, ``13812345678``, ``05802012345``, ``2012345`` (local, no
area code), ``12345`` (a short code), ``anonymous``. Everything that stores or
compares numbers goes through :func:`normalize`, so a repeat caller matches
whichever way the network presented them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_AREA_CODE = "0580"  # 舟山

_ANONYMOUS = {"", "anonymous", "unknown", "restricted", "private", "unavailable", "<unknown>"}
_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE_RE = re.compile(r"^0[1-9][0-9]{1,2}[2-9][0-9]{6,7}$")
_LOCAL_RE = re.compile(r"^[2-9][0-9]{6,7}$")
_SHORT_RE = re.compile(r"^[1-9][0-9]{2,5}$")
_SEPARATORS = re.compile(r"[\s\-().]")


class NumberKind(StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    SHORT = "short"
    INTERNATIONAL = "international"
    ANONYMOUS = "anonymous"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    number: str  # normalised: national form with trunk 0 for landlines, '' when anonymous
    kind: NumberKind
    raw: str

    @property
    def known(self) -> bool:
        return self.kind not in (NumberKind.ANONYMOUS, NumberKind.INVALID)


def normalize(raw: str | None, area_code: str = DEFAULT_AREA_CODE) -> PhoneNumber:
    text = (raw or "").strip()
    digits = _SEPARATORS.sub("", text)
    if digits.lower() in _ANONYMOUS:
        return PhoneNumber("", NumberKind.ANONYMOUS, text)
    if digits.startswith("+"):
        digits = "00" + digits[1:]
    if not digits.isdigit():
        return PhoneNumber("", NumberKind.INVALID, text)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) in (12, 13) and (
        _MOBILE_RE.match(digits[2:]) or digits[2] != "1"
    ):
        digits = digits[2:]
    elif digits.startswith("00"):
        return PhoneNumber(digits, NumberKind.INTERNATIONAL, text)
    if _MOBILE_RE.match(digits):
        return PhoneNumber(digits, NumberKind.MOBILE, text)
    if digits.startswith("0") and _MOBILE_RE.match(digits[1:]):
        return PhoneNumber(digits[1:], NumberKind.MOBILE, text)  # trunk prefix before a mobile
    if not digits.startswith("0") and _LANDLINE_RE.match("0" + digits) and len(digits) >= 10:
        digits = "0" + digits  # area code presented without its trunk 0
    if _LANDLINE_RE.match(digits):
        return PhoneNumber(digits, NumberKind.LANDLINE, text)
    if _LOCAL_RE.match(digits):
        return PhoneNumber(area_code + digits, NumberKind.LANDLINE, text)
    if _SHORT_RE.match(digits):
        return PhoneNumber(digits, NumberKind.SHORT, text)
    return PhoneNumber(digits, NumberKind.INVALID, text)


def mask(number: str | None) -> str:
    """Mask the middle of a number for roles that do not need it: 138****5678."""
    if not number:
        return ""
    if len(number) <= 6:
        return number  # short codes (12345, 110) are not personal data
    keep_head = 3 if len(number) >= 11 else 2
    keep_tail = 4 if len(number) >= 11 else 2
    return number[:keep_head] + "*" * (len(number) - keep_head - keep_tail) + number[-keep_tail:]


_MASKED_RE = re.compile(r"^[0-9]+\*+[0-9]+$")


def masked_pattern(text: str | None) -> str | None:
    """The SQL ``LIKE`` pattern of every number :func:`mask` shows as ``text`` (e.g.
    ``138****5678`` → ``138____5678``), or None when ``text`` is not a masked number.
    Searching by it tells nothing the masked number did not already show."""
    text = (text or "").strip()
    if not _MASKED_RE.match(text) or mask(text.replace("*", "0")) != text:
        return None
    return text.replace("*", "_")
