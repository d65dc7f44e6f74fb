from pathlib import Path

import asyncpg
import pytest
from support import REGISTRY_FILE, three_mistakes

from hotline.config import PROJECT_ROOT
from hotline.registry import Mode, RegistryInvalid, load_registry, parse_registry, sync_registry
from hotline.registry.model import Registry


def test_shipped_registry_has_the_33_numbers(registry: Registry) -> None:
    assert len(registry) == 33
    assert registry.counts() == {"platform": 1, "merged": 13, "dual": 14, "subcenter": 5}
    assert registry.platform.number == "12345"
    for line in registry:
        if line.mode is Mode.DUAL:
            assert line.expert_pool
        if line.mode is Mode.SUBCENTER:
            assert line.dial_target and line.no_answer_timeout
        assert line.service_hours.always  # 7x24 unless configured


def test_registry_copies_the_reference_facts(registry: Registry) -> None:
    import csv

    # docs/sources/hotlines.csv is the copy of shared/reference/hotlines.csv the file was built from
    reference = PROJECT_ROOT / "docs" / "sources" / "hotlines.csv"
    for row in csv.DictReader(reference.open(encoding="utf-8")):
        line = registry.get(row["number"])
        assert line is not None, row["number"]
        assert (line.name, line.department, line.mode.value, line.mode_basis) == (
            row["name_zh"], row["department_zh"], row["mode"], row["mode_basis"])
    assert not registry.get("12317").mode_confirmed  # a 'sample:' mode is flagged
    assert registry.get("12315").mode_confirmed


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RegistryInvalid) as err:
        parse_registry(three_mistakes(), source="bad.yaml")
    problems = {(p.entry, p.field) for p in err.value.problems}
    assert ("lines[1] (12349)", "mode") in problems
    assert ("lines[2] (12349)", "number") in problems
    assert ("lines[29] (12366)", "dial_target") in problems
    assert "mergd" in err.value.message


@pytest.mark.parametrize(
    ("patch", "field", "fragment"),
    [
        ({"expert_pool": "experts-x"}, "expert_pool", "no expert seats"),
        ({"mode": "subcenter", "dial_target": "PJSIP/1@x", "no_answer_timeout": 500}, "no_answer_timeout", "outside"),
        ({"mode": "subcenter", "dial_target": "PJSIP/1@x", "no_answer_timeout": "soon"}, "no_answer_timeout", "whole seconds"),
        ({"mode": "subcenter", "dial_target": "not a dial string"}, "dial_target", "dial string"),
        ({"number": "12a45"}, "number", "short code"),
        ({"service_hours": [{"days": "mon-fri", "open": "18:00", "close": "08:00"}]}, "service_hours[0]", "closes"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_each_kind_of_mistake_names_entry_and_field(patch: dict, field: str, fragment: str) -> None:
    line = {"number": "12999", "name": "测试热线", "department": "测试局", "unit": "test",
            "mode": "merged", "mode_basis": "test", "queue": "hotline-12345", "skill": "general"}
    line.update(patch)
    platform = {"number": "12345", "name": "12345", "department": "办", "unit": "gov",
                "mode": "platform", "queue": "hotline-12345", "skill": "general"}
    import yaml

    text = yaml.safe_dump({"lines": [platform, line]}, allow_unicode=True)
    with pytest.raises(RegistryInvalid) as err:
        parse_registry(text)
    matching = [p for p in err.value.problems if p.field == field]
    assert matching, err.value.problems
    assert fragment in matching[0].message
    assert "lines[1]" in matching[0].entry


def test_service_hours_windows() -> None:
    from datetime import datetime

    text = REGISTRY_FILE.read_text(encoding="utf-8").replace(
        '  - number: "12349"\n',
        '  - number: "12349"\n    service_hours: [{days: mon-fri, open: "08:30", close: "17:30"}]\n', 1)
    line = parse_registry(text).get("12349")
    assert line is not None
    assert line.service_hours.is_open(datetime(2026, 11, 30, 9, 0))  # Monday
    assert not line.service_hours.is_open(datetime(2026, 11, 29, 9, 0))  # Sunday
    assert not line.service_hours.is_open(datetime(2026, 11, 30, 17, 30))


async def test_sync_deactivates_removed_lines_and_keeps_them(pool: asyncpg.Pool, registry: Registry) -> None:
    smaller = Registry(tuple(line for line in registry if line.number != "12318"))
    async with pool.acquire() as conn:
        result = await sync_registry(conn, smaller)
    assert result.deactivated == ("12318",)
    assert len(result.unchanged) == 32
    row = await pool.fetchrow("SELECT active, deactivated_at FROM hotlines WHERE number = '12318'")
    assert row["active"] is False and row["deactivated_at"] is not None
    async with pool.acquire() as conn:
        result = await sync_registry(conn, registry)
    assert result.updated == ("12318",)
    assert await pool.fetchval("SELECT count(*) FROM hotlines WHERE active") == 33


async def test_bad_file_leaves_database_untouched(pool: asyncpg.Pool, tmp_path: Path) -> None:
    before = await pool.fetch("SELECT * FROM hotlines ORDER BY number")
    bad = tmp_path / "hotlines.yaml"
    bad.write_text(three_mistakes(), encoding="utf-8")
    with pytest.raises(RegistryInvalid):
        load_registry(bad)
    assert await pool.fetch("SELECT * FROM hotlines ORDER BY number") == before


@pytest.mark.parametrize(
    ("patch", "field", "fragment"),
    [
        # a line break ends the dialplan comment that names the line: the rest becomes dialplan
        ({"name": "测试热线\nexten => 999,1,System(id)"}, "name", "line break or control character"),
        ({"department": "测试局\r\n[evil]"}, "department", "line break or control character"),
        ({"name": "测试热线\u2028same => n,Hangup()"}, "name", "line break or control character"),
        ({"name": "测试,热线"}, "name", "','"),
        ({"department": "测试局;x"}, "department", "';'"),
        ({"name": "测试&热线"}, "name", "'&'"),
        # Playback(${HOTLINE_ANNOUNCEMENT}): ',' adds options, '&' plays several files
        ({"announcement": "hotline/welcome,noanswer"}, "announcement", "sound file"),
        ({"announcement": "hotline/a&/etc/passwd"}, "announcement", "sound file"),
        ({"announcement": "../../../etc/shadow"}, "announcement", "sound file"),
        ({"announcement": "hotline/welcome)"}, "announcement", "sound file"),
        # Dial(${HOTLINE_DIAL_TARGET},…): a ',' or '(' in the target reaches Dial's options
        ({"mode": "subcenter", "dial_target": "PJSIP/1@x,,U(evil)"}, "dial_target", "dial string"),
        ({"mode": "subcenter", "dial_target": "PJSIP/1@x)(evil"}, "dial_target", "dial string"),
        ({"mode": "subcenter", "dial_target": "PJSIP/${SHELL(id)}"}, "dial_target", "dial string"),
        ({"mode": "subcenter", "dial_target": "PJSIP/1@x;evil"}, "dial_target", "dial string"),
        ({"mode": "subcenter", "dial_target": "PJSIP/1@x\nsame"}, "dial_target", "line break or control"),
    ],
)
def test_free_text_that_would_reach_the_dialplan_is_refused(patch: dict, field: str, fragment: str) -> None:
    test_each_kind_of_mistake_names_entry_and_field(patch, field, fragment)


def test_shipped_names_with_parentheses_stay_valid(registry: Registry) -> None:
    """Names only reach dialplan comments; the reference data writes some with ASCII
    parentheses, which a comment holds safely."""
    assert registry.get("12330").department == "市场监督管理局(知识产权局)"
