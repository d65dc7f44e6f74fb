"""Event topics are named (hotline.events.Topic), and every topic published anywhere
(Python publish calls, SQL pg_notify in the call store and in migrations) has a
subscriber in the tree or is documented as external (hotline.events.EXTERNAL)."""

from __future__ import annotations

import re
from pathlib import Path

from hotline.config import PACKAGE_DIR, PROJECT_ROOT
from hotline.events import EXTERNAL, Topic

BY_NAME = {t.name: t.value for t in Topic}


def _constants() -> dict[Path, dict[str, str]]:
    """Module constants that name a topic (``TOPIC = "kb.changed"`` or ``= Topic.X``), per file."""
    found: dict[Path, dict[str, str]] = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        for m in re.finditer(r'^(TOPIC\w*)\s*=\s*(?:"(?P<s>[^"]+)"|Topic\.(?P<t>\w+))', path.read_text("utf-8"), re.M):
            found.setdefault(path, {})[m.group(1)] = m.group("s") or BY_NAME[m.group("t")]
    return found


def _topics(expr: str, path: Path, constants: dict[Path, dict[str, str]]) -> set[str]:
    """The topic(s) ``expr`` names: a literal, ``Topic.X``, a constant of this module, or
    ``module.CONSTANT`` (any module's constant of that name)."""
    expr = expr.strip()
    if m := re.fullmatch(r'"([^"]+)"', expr):
        return {m.group(1)}
    if m := re.fullmatch(r"Topic\.(\w+)", expr):
        return {BY_NAME[m.group(1)]}
    if "." not in expr:
        return {constants[path][expr]} if expr in constants.get(path, {}) else set()
    name = expr.split(".")[-1]
    return {names[name] for names in constants.values() if name in names}


def _sources() -> list[Path]:
    return [*PACKAGE_DIR.rglob("*.py"), *(PROJECT_ROOT / "migrations").glob("*.sql")]


def published() -> set[str]:
    constants = _constants()
    topics: set[str] = set()
    for path in _sources():
        text = path.read_text("utf-8")
        for expr in re.findall(r"(?<![\w.])publish\(\s*\w+(?:\.\w+)*(?:\[\w+\])?(?:\.\w+)*,\s*([^,]+),", text):
            found = _topics(expr, path, constants)
            assert found, f"{path}: publish with a topic this test cannot read: {expr}"
            topics |= found
        topics |= set(re.findall(r"'topic',\s*'([a-z_.]+)'", text))
        topics |= {BY_NAME[n] for n in re.findall(r"'topic',\s*'\{Topic\.(\w+)\}'", text)}  # SQL built from Topic
        topics |= set(re.findall(r'"topic":\s*"([a-z_.]+)"', text))
    return topics


def subscribed() -> set[str]:
    constants = _constants()
    topics: set[str] = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        text = path.read_text("utf-8")
        for expr in re.findall(r"\.subscribe\(\s*([^,]+),", text):
            if expr.strip() == "topic":  # the console hub subscribes to its TOPICS
                continue
            found = _topics(expr, path, constants)
            assert found, f"{path}: subscribe with a topic this test cannot read: {expr}"
            topics |= found
    from hotline.console.hub import TOPICS

    return topics | {str(t) for t in TOPICS}


def test_every_published_topic_is_named_and_has_a_subscriber_or_is_external() -> None:
    out = published()
    assert {"call.updated", "seat.changed", "feed.changed", "ticket.changed"} <= out  # the scan reads them all
    names = {t.value for t in Topic}
    assert out <= names, f"topics published without a Topic constant: {sorted(out - names)}"
    orphans = out - subscribed() - {t.value for t in EXTERNAL}
    assert orphans == set(), f"published, nobody subscribes, not documented as external: {sorted(orphans)}"


def test_external_topics_really_have_no_subscriber_and_every_topic_is_published() -> None:
    assert not ({t.value for t in EXTERNAL} & subscribed()), "an external topic has a subscriber: drop it from EXTERNAL"
    assert {t.value for t in Topic} <= published(), "a Topic nobody publishes: remove it"


def test_publishers_and_subscribers_name_topics_by_constant() -> None:
    values = "|".join(re.escape(t.value) for t in Topic)
    bare = {
        str(path.relative_to(PACKAGE_DIR))
        for path in PACKAGE_DIR.rglob("*.py")
        if path.name != "events.py" and re.search(rf"[\"']({values})[\"']", path.read_text("utf-8"))
    }
    assert bare == set(), f"topics spelt as strings (use hotline.events.Topic): {sorted(bare)}"
