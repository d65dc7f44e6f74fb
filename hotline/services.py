"""Long-running parts of a node (web server, FastAGI server, scheduler, workers).

A feature that needs something running adds ``hotline/<package>/service.py``
with ``create_service(runtime, options) -> Service | None``; ``hotline serve``
finds it, starts services in order and stops them in reverse on shutdown.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from typing import Protocol

import hotline
from hotline.runtime import Runtime


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """Which roles this node plays (``--no-web`` etc.) and how it starts."""

    web: bool = True
    agi: bool = True
    scheduler: bool = True
    workers: bool = True
    demo: bool = False

    def plays(self, role: str) -> bool:
        return bool(getattr(self, role, True))


class Service(Protocol):
    name: str
    #: one of "web", "agi", "scheduler", "workers": the node role it belongs to
    role: str
    #: lower starts first
    order: int

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> str: ...


def service_modules() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(hotline.__path__):
        if info.ispkg and importlib.util.find_spec(f"hotline.{info.name}.service") is not None:
            names.append(f"hotline.{info.name}.service")
    return sorted(names)


def create_services(runtime: Runtime, options: NodeOptions) -> list[Service]:
    services = []
    for name in service_modules():
        service = importlib.import_module(name).create_service(runtime, options)
        if service is not None and options.plays(service.role):
            services.append(service)
    return sorted(services, key=lambda s: (s.order, s.name))
