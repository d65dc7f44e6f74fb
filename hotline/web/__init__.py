"""The HTTP adapter: aiohttp app, middlewares, routes. Calls the domain; never the reverse."""

from hotline.web.access import public, requires
from hotline.web.app import create_app
from hotline.web.keys import RUNTIME, SESSION, USER
from hotline.web.util import json_response, read_json

__all__ = ["RUNTIME", "SESSION", "USER", "create_app", "json_response", "public", "read_json", "requires"]
