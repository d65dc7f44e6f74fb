from __future__ import annotations

from aiohttp import web

from hotline.auth.model import User
from hotline.auth.sessions import Session
from hotline.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
USER = web.RequestKey("user", User)
SESSION = web.RequestKey("session", Session)

__all__ = ["RUNTIME", "SESSION", "USER", "Session", "User"]
