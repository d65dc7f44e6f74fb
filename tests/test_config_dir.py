"""Every configuration file is read from the settings' ``config_dir``, and a file the
site does not have comes from the package: the SLA rules, the refusal reasons, the
category table, the region tree, the calendar years (and the registry: test_config).
The parsed files belong to the node (``runtime.files``): two runtimes with different
``config_dir`` in one process read their own, and a bad file stops ``hotline serve``
before the database is opened, naming the file and the setting."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from hotline.config import SHIPPED_CONFIG_DIR, ConfigFiles, Settings
from hotline.errors import ConfigError, ValidationError
from hotline.kb.settings import synonyms_path as kb_synonyms_path
from hotline.node import config_file_loaders, run_node
from hotline.runtime import Runtime
from hotline.services import NodeOptions
from hotline.sla.config import sla_config
from hotline.tickets.intake import NewTicket, create_ticket
from hotline.tickets.refusals import reasons_for
from hotline.tickets.seed import seed_reference_data
from hotline.tickets.workflow import apply


def _site_config(conf: Path, *, window: int = 7, reason: str = "site_only") -> None:
    """A site's config_dir: each file changed from the packaged one in a way a test can see."""
    (conf / "calendar").mkdir(parents=True)
    sla = (SHIPPED_CONFIG_DIR / "sla.yaml").read_text(encoding="utf-8")
    assert "return_window_working_days: 2" in sla and "scan_interval_seconds: 60" in sla
    (conf / "sla.yaml").write_text(sla.replace("return_window_working_days: 2", f"return_window_working_days: {window}")
                                   .replace("scan_interval_seconds: 60", "scan_interval_seconds: 17"),
                                   encoding="utf-8")
    (conf / "refusal_reasons.yaml").write_text(
        f"reasons:\n  - {{code: {reason}, name: 本地配置的原因, outcome: refused}}\n", encoding="utf-8")
    (conf / "categories.yaml").write_text('categories:\n  - {code: "77", name: 本地分类}\n', encoding="utf-8")
    (conf / "regions.yaml").write_text('regions:\n  - {code: "110000", name: 北京市, level: city}\n',
                                       encoding="utf-8")
    (conf / "calendar" / "2031.yaml").write_text(
        "year: 2031\nprovisional: true\nholidays:\n  - {name: 本地假日, from: 2031-03-03, to: 2031-03-03}\n"
        "workdays: []\n", encoding="utf-8")


async def test_each_loader_reads_the_config_dir(runtime: Runtime, pool: asyncpg.Pool, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    _site_config(conf)
    site = Runtime(replace(runtime.settings, config_dir=conf), runtime.registry, runtime.db)

    rules = sla_config(site.files)
    assert (rules.return_window_working_days, rules.scan_interval_seconds) == (7, 17)
    assert sla_config(None).return_window_working_days == 2  # no files: the packaged file
    assert [r.code for r in reasons_for(site.files)] == ["site_only"]
    assert "site_only" not in {r.code for r in reasons_for(None)}

    async with pool.acquire() as conn:
        await seed_reference_data(conn, site.files)
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
                           files=site.files)
        assert done["state"] == "closed"


async def test_two_runtimes_with_different_config_dirs_read_their_own_files(
        runtime: Runtime, pool: asyncpg.Pool, tmp_path: Path) -> None:
    """One process, two nodes: each parses its own config_dir once and keeps it; neither
    sees the other's files, and the packaged defaults are untouched by both."""
    _site_config(tmp_path / "a", window=7, reason="site_a")
    _site_config(tmp_path / "b", window=9, reason="site_b")
    a = Runtime(replace(runtime.settings, config_dir=tmp_path / "a"), runtime.registry, runtime.db)
    b = Runtime(replace(runtime.settings, config_dir=tmp_path / "b"), runtime.registry, runtime.db)
    assert a.files is not b.files

    # read interleaved, each more than once: every answer is the asking node's own file
    for _ in range(2):
        assert sla_config(a.files).return_window_working_days == 7
        assert sla_config(b.files).return_window_working_days == 9
        assert [r.code for r in reasons_for(a.files)] == ["site_a"]
        assert [r.code for r in reasons_for(b.files)] == ["site_b"]
    assert sla_config(a.files) is sla_config(a.files)  # parsed once per node, then kept
    assert sla_config(None).return_window_working_days == 2
    assert {"site_a", "site_b"}.isdisjoint(r.code for r in reasons_for(None))

    # a file edited on disk after a node read it changes nothing for that node (it is
    # read at start), while a node started afterwards reads the new text
    (tmp_path / "a" / "refusal_reasons.yaml").write_text(
        "reasons:\n  - {code: site_a2, name: 改过的原因, outcome: refused}\n", encoding="utf-8")
    assert [r.code for r in reasons_for(a.files)] == ["site_a"]
    later = Runtime(a.settings, runtime.registry, runtime.db)
    assert [r.code for r in reasons_for(later.files)] == ["site_a2"]

    # the workflow of each node refuses with that node's reasons
    async with pool.acquire() as conn:
        for rt, own, other in ((a, "site_a", "site_b"), (b, "site_b", "site_a")):
            ticket = await create_ticket(conn, NewTicket(hotline_number="12345", subject=f"{own} 不予受理"))
            with pytest.raises(ValidationError, match=own):  # the refusal lists the node's own reasons
                await apply(conn, ticket, "refuse", None, {"reason_code": other, "answer": "已告知"}, files=rt.files)
            done = await apply(conn, ticket, "refuse", None, {"reason_code": own, "answer": "已告知"},
                               files=rt.files)
            assert done["state"] == "closed"


@pytest.mark.parametrize(("name", "text", "named"), [
    ("sla.yaml", "return_windw_working_days: 2\n", "return_windw_working_days"),
    ("refusal_reasons.yaml", "reasons:\n  - {code: x, name: 某原因, outcome: refusd}\n", "outcome"),
    ("categories.yaml", "categories:\n  - {code: \"01\", name: 甲, parent: \"99\"}\n", "parent"),
    ("regions.yaml", "regions:\n  - {code: \"11\", name: 北京市, level: city}\n", "regions[0]"),
])
async def test_a_bad_file_stops_the_node_before_the_database_naming_file_and_setting(
        settings: Settings, tmp_path: Path, name: str, text: str, named: str) -> None:
    assert name in config_file_loaders()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / name).write_text(text, encoding="utf-8")
    # a database URL nothing listens on: the node must stop before it tries to open it
    bad = replace(settings, config_dir=conf, database=replace(settings.database, url="postgresql://nobody@127.0.0.1:1/x"))
    with pytest.raises(ConfigError) as caught:
        await run_node(bad, NodeOptions())
    assert str(conf / name) in str(caught.value) and named in str(caught.value), caught.value
    # good files: each is read once and kept by the node's ConfigFiles
    files = ConfigFiles(settings)
    for load in config_file_loaders().values():
        assert load(files) is load(files)


def test_a_file_the_site_lacks_comes_from_the_package(runtime: Runtime, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "sla.yaml").write_text((SHIPPED_CONFIG_DIR / "sla.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = replace(runtime.settings, config_dir=conf)
    assert settings.config_file("sla.yaml") == conf / "sla.yaml"
    for name in ("categories.yaml", "regions.yaml", "refusal_reasons.yaml", "calendar", "hotlines.yaml"):
        assert settings.config_file(name) == SHIPPED_CONFIG_DIR / name


def test_the_knowledge_bases_synonyms_come_from_the_config_dir(runtime: Runtime, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    settings = replace(runtime.settings, config_dir=conf)
    assert kb_synonyms_path(settings) == SHIPPED_CONFIG_DIR / "kb_synonyms.yaml"  # the site has none
    (conf / "kb_synonyms.yaml").write_text("groups: []\n", encoding="utf-8")
    assert kb_synonyms_path(settings) == conf / "kb_synonyms.yaml"
    # a relative [kb] synonyms_path is the config_dir's too
    extra = {**settings.extra, "kb": {"synonyms_path": "site/words.yaml"}}
    assert kb_synonyms_path(replace(settings, extra=extra)) == conf / "site" / "words.yaml"


#: the process-wide memos left in modules, each a pure function of constant input that
#: holds no node's setting (a new one is a decision: make it a member of the runtime, or
#: add it here with the reason next to its declaration)
PURE_MEMOS = {
    ("hotline/config.py", "packaged_files"),     # the package's own files, never a site's
    ("hotline/ingest/schema.py", "_normalized"),  # phone-number text -> normalised text
    ("hotline/kb/text.py", "_width_table"),       # a Unicode folding table
}


def test_no_module_keeps_a_cache_of_a_nodes_configuration() -> None:
    """Loaders keyed by a path or settings kept in module globals would be shared by two
    nodes in one process: caches of configuration are members of the runtime."""
    import ast

    from hotline.config import PACKAGE_DIR

    found = set()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name in ("cache", "lru_cache"):
                    found.add((f"hotline/{path.relative_to(PACKAGE_DIR).as_posix()}", node.name))
    assert found <= PURE_MEMOS, sorted(found - PURE_MEMOS)
