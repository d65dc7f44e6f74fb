"""The request signature of the ingest API (HMAC-SHA256).

A sub-centre signs every request with its own key::

    string_to_sign = METHOD + "\\n" + PATH_WITH_QUERY + "\\n" + TIMESTAMP + "\\n" + hex(sha256(BODY))
    X-Hotline-Source:    <source code>
    X-Hotline-Timestamp: <unix seconds>
    X-Hotline-Signature: v1=<hex(hmac_sha256(key, string_to_sign))>

The server refuses a timestamp outside the replay window; a request replayed with
the same signature inside the window gets the stored answer of the first one.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SOURCE_HEADER = "X-Hotline-Source"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"
SIGNATURE_HEADER = "X-Hotline-Signature"
SCHEME = "v1"


def string_to_sign(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join((method.upper(), path, timestamp, hashlib.sha256(body).hexdigest())).encode()


def signature(key: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), string_to_sign(method, path, timestamp, body), hashlib.sha256)
    return f"{SCHEME}={digest.hexdigest()}"


def sign_headers(
    source: str, key: str, method: str, path: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers a client sends (``path`` includes the query string)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        SOURCE_HEADER: source,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature(key, method, path, ts, body),
    }


def verify(key: str, method: str, path: str, timestamp: str, body: bytes, sent: str) -> bool:
    return hmac.compare_digest(signature(key, method, path, timestamp, body).encode(), sent.encode())
