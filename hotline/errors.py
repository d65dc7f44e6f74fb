"""The domain's exception hierarchy.

Each kind of refusal is one class with a stable ``code`` and an HTTP ``status``;
the web layer maps them in one middleware to ``{"error": {"code", "message",
"field"?}}``. Domain code raises these and never imports the web layer.
"""

from __future__ import annotations

from typing import Any


class HotlineError(Exception):
    """Base class: a refusal with a machine-readable code and a human message."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, **details: Any) -> None:
        """``code`` names the refusal more precisely than the class's (``unknown_category``
        rather than ``invalid``); ``details`` (``value=`` the refused value, ...) go into
        the response body beside it."""
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body.update(self.details)
        return body


class ConfigError(HotlineError):
    code = "config_invalid"
    status = 500


class ValidationError(HotlineError):
    """Bad input: names the field and the value."""

    code = "invalid"
    status = 400


class NotFound(HotlineError):
    code = "not_found"
    status = 404


class Conflict(HotlineError):
    """The request clashes with current state (illegal transition, duplicate, ...)."""

    code = "conflict"
    status = 409


class Unauthenticated(HotlineError):
    code = "unauthenticated"
    status = 401


class Forbidden(HotlineError):
    code = "forbidden"
    status = 403


class TooManyRequests(HotlineError):
    code = "rate_limited"
    status = 429


class PayloadTooLarge(HotlineError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(HotlineError):
    """The body is not in a format the route accepts (names the expected type)."""

    code = "unsupported_media_type"
    status = 415


class Unavailable(HotlineError):
    """A dependency (the database, an upstream) is not answering."""

    code = "unavailable"
    status = 503
