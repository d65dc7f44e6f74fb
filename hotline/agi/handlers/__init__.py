"""Entry points by script name, one small module each (``agi://host/<name>``).

A module registers its function with :func:`entry_point`; :func:`load_handlers`
imports every module of this package and returns the name → function table.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any

from hotline.calls.channel import Channel
from hotline.calls.context import CallContext

Handler = Callable[[CallContext, Channel], Awaitable[Any]]
_REGISTRY: dict[str, Handler] = {}


def entry_point(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        if name in _REGISTRY and _REGISTRY[name] is not func:
            raise ValueError(f"AGI entry point {name!r} registered twice")
        _REGISTRY[name] = func
        return func

    return register


def load_handlers() -> dict[str, Handler]:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(_REGISTRY)
