"""Every configuration file is read from the settings' ``config_dir``, and a file the
site does not have comes from the package: the SLA rules, the refusal reasons, the
category table, the region tree, the calendar years (and the registry: test_config)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from hotline.config import SHIPPED_CONFIG_DIR
from hotline.errors import ValidationError
from hotline.runtime import Runtime
from hotline.sla.config import sla_config
from hotline.tickets.intake import NewTicket, create_ticket
from hotline.tickets.refusals import reasons_for
from hotline.tickets.seed import seed_reference_data
from hotline.tickets.workflow import apply


def _site_config(conf: Path) -> None:
    """A site's config_dir: each file changed from the packaged one in a way a test can see."""
    (conf / "calendar").mkdir(parents=True)
    sla = (SHIPPED_CONFIG_DIR / "sla.yaml").read_text(encoding="utf-8")
    assert "return_window_working_days: 2" in sla and "scan_interval_seconds: 60" in sla
    (conf / "sla.yaml").write_text(sla.replace("return_window_working_days: 2", "return_window_working_days: 7")
                                   .replace("scan_interval_seconds: 60", "scan_interval_seconds: 17"),
                                   encoding="utf-8")
    (conf / "refusal_reasons.yaml").write_text(
        "reasons:\n  - {code: site_only, name: 本地配置的原因, outcome: refused}\n", encoding="utf-8")
    (conf / "categories.yaml").write_text('categories:\n  - {code: "77", name: 本地分类}\n', encoding="utf-8")
    (conf / "regions.yaml").write_text('regions:\n  - {code: "110000", name: 北京市, level: city}\n',
                                       encoding="utf-8")
    (conf / "calendar" / "2031.yaml").write_text(
        "year: 2031\nprovisional: true\nholidays:\n  - {name: 本地假日, from: 2031-03-03, to: 2031-03-03}\n"
        "workdays: []\n", encoding="utf-8")


async def test_each_loader_reads_the_config_dir(runtime: Runtime, pool: asyncpg.Pool, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    _site_config(conf)
    settings = replace(runtime.settings, config_dir=conf)

    rules = sla_config(settings)
    assert (rules.return_window_working_days, rules.scan_interval_seconds) == (7, 17)
    assert sla_config(None).return_window_working_days == 2  # no settings: the packaged file
    assert [r.code for r in reasons_for(settings)] == ["site_only"]
    assert "site_only" not in {r.code for r in reasons_for(None)}

    async with pool.acquire() as conn:
        await seed_reference_data(conn, settings)
        assert await conn.fetchval("SELECT name FROM ticket_categories WHERE code = '77'") == "本地分类"
        assert not await conn.fetchval("SELECT true FROM ticket_categories WHERE code = '01'")  # the packaged table
        assert await conn.fetchval("SELECT name FROM regions WHERE code = '110000'") == "北京市"
        assert not await conn.fetchval("SELECT true FROM regions WHERE code = '330900'")
        assert await conn.fetchval("SELECT kind FROM calendar_days WHERE day = $1", date(2031, 3, 3)) == "holiday"

        # the workflow refuses with the site's reasons, not the packaged ones
        ticket = await create_ticket(conn, NewTicket(hotline_number="12345", subject="本地原因不予受理"))
        with pytest.raises(ValidationError, match="site_only"):  # the packaged list does not have it
            await apply(conn, ticket, "refuse", None, {"reason_code": "site_only", "answer": "已告知"})
        done = await apply(conn, ticket, "refuse", None, {"reason_code": "site_only", "answer": "已告知"},
                           settings=settings)
        assert done["state"] == "closed"


def test_a_file_the_site_lacks_comes_from_the_package(runtime: Runtime, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "sla.yaml").write_text((SHIPPED_CONFIG_DIR / "sla.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = replace(runtime.settings, config_dir=conf)
    assert settings.config_file("sla.yaml") == conf / "sla.yaml"
    for name in ("categories.yaml", "regions.yaml", "refusal_reasons.yaml", "calendar", "hotlines.yaml"):
        assert settings.config_file(name) == SHIPPED_CONFIG_DIR / name
