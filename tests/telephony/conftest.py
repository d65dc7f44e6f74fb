"""Fixtures of the phone-system tests: a real Asterisk 22 and the backend's node
services over the test database (see phone_support.py; import helpers from there,
never ``from conftest``: several test folders have a conftest module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer
from phone_support import (
    SUBCENTRE_TIMEOUT,
    SUBCENTRES,
    PhoneSystem,
    start_phone_system,
    stop_phone_system,
)
from support import web_server

from hotline.config import PROJECT_ROOT, Settings
from hotline.registry import Registry, load_registry
from hotline.telephony.sandbox import AsteriskSandbox


@pytest.fixture(scope="session")
def pbx_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    raw = yaml.safe_load((PROJECT_ROOT / "config" / "hotlines.yaml").read_text(encoding="utf-8"))
    for line in raw["lines"]:
        if line["number"] in SUBCENTRES:
            line["dial_target"] = f"Local/{SUBCENTRES[line['number']]}@subcenters"
            line["no_answer_timeout"] = SUBCENTRE_TIMEOUT
    path = tmp_path_factory.mktemp("registry") / "hotlines.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_registry(path)


@pytest.fixture
def pbx(tmp_path: Path, asterisk_install: Any) -> Iterator[AsteriskSandbox]:
    sandbox = AsteriskSandbox(tmp_path / "pbx", asterisk_install)
    sandbox.init()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
async def phone_system(settings: Settings, pbx_registry: Registry, db_url: str,
                       pbx: AsteriskSandbox) -> AsyncIterator[PhoneSystem]:
    system = await start_phone_system(settings, pbx_registry, db_url, pbx)
    try:
        yield system
    finally:
        await stop_phone_system(system)


@pytest.fixture
async def web(phone_system: PhoneSystem) -> AsyncIterator[TestServer]:
    async with web_server(phone_system.runtime) as server:
        yield server
