"""``hotline dialplan``: a parse of the generated files, number by number."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from hotline.calls.dialplan import DialplanOptions, generate_extensions, generate_queues
from hotline.calls.routing import decide_route, identify_line
from hotline.calls.settings import CallSettings
from hotline.cli import main
from hotline.registry import Mode, Registry

_EXTEN = re.compile(r"^exten => ([^,]+),(\d+|n)(?:\((\w+)\))?,(.*)$")
_SAME = re.compile(r"^ same => n(?:\((\w+)\))?,(.*)$")


def parse(text: str) -> dict[str, dict[str, list[tuple[str | None, str]]]]:
    """context → extension → [(label, application call)] in priority order."""
    contexts: dict[str, dict[str, list[tuple[str | None, str]]]] = {}
    context = exten = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        if line.startswith("["):
            context = line.strip("[]")
            assert context not in contexts, f"context {context} defined twice"
            contexts[context] = {}
            continue
        assert context is not None
        m = _EXTEN.match(line)
        if m:
            exten = m.group(1)
            assert m.group(2) == "1", line
            assert exten not in contexts[context], f"{context}/{exten} defined twice"
            contexts[context][exten] = [(m.group(3), m.group(4))]
            continue
        m = _SAME.match(line)
        assert m and exten is not None, f"unparseable dialplan line {line!r}"
        contexts[context][exten].append((m.group(1), m.group(2)))
    return contexts


def _goto_targets(app: str) -> list[tuple[str, str]]:
    """Every context,exten a Goto/GotoIf/hangup-handler/gosub can jump to (literal ones)."""
    targets = []
    for ctx, ext in re.findall(r"(hotline-[a-z-]+),([A-Za-z0-9_${}:]+),(?:1|\w+)", app):
        targets.append((ctx, ext))
    return targets


def _matches(pattern: str, exten: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == exten
    regex = "".join({"X": "[0-9]", "N": "[2-9]", "Z": "[1-9]", ".": ".+"}.get(c, re.escape(c)) for c in pattern[1:])
    return re.fullmatch(regex, exten) is not None


def test_every_number_enters_the_agi_and_falls_back_to_12345(registry: Registry) -> None:
    text = generate_extensions(registry, DialplanOptions("agi://10.0.0.5:4573"))
    plan = parse(text)
    incoming = plan["hotline-incoming"]
    assert set(incoming) == {line.number for line in registry}
    assert len(incoming) == 33
    for line in registry:
        apps = [app for _, app in incoming[line.number]]
        assert "Set(CHANNEL(hangup_handler_push)=hotline-hangup,s,1)" in apps
        agi = apps.index(f"AGI(agi://10.0.0.5:4573/incoming?line={line.number}&linkedid=${{CHANNEL(linkedid)}})")
        assert apps.index("Set(AGIEXITONHANGUP=yes)") < agi
        # the CDR knows the line even when the backend is down
        assert apps.index(f"Set(CDR(userfield)=hotline:{line.number})") < agi
        assert apps[agi + 1] == f'GotoIf($["${{AGISTATUS}}" != "SUCCESS"]?hotline-fallback,{line.number},1)'
        assert apps[agi + 2] == f'GotoIf($["${{HOTLINE_ROUTE}}" = ""]?hotline-fallback,{line.number},1)'
        assert apps[agi + 3] == "Goto(hotline-route,${HOTLINE_ROUTE},1)"
        # the AGI-failure path: the fallback context matches the number and ends in the 12345 queue
        fallback = plan["hotline-fallback"]
        pattern = next(p for p in fallback if _matches(p, line.number))
        steps = [app for _, app in fallback[pattern]]
        assert "Set(HOTLINE_QUEUE=hotline-12345)" in steps and steps[-1] == "Goto(hotline-queue,s,1)"
        assert "Set(CDR(userfield)=hotline:${EXTEN}:fallback)" in steps
    queue = [app for _, app in plan["hotline-queue"]["s"]]
    assert 'Set(HOTLINE_Q=${IF($["${HOTLINE_QUEUE}" = ""]?hotline-12345:${HOTLINE_QUEUE})})' == queue[0]
    # Asterisk 22 (the default): gosub is Queue()'s 7th argument, a context with its
    # arguments after an escaped comma (app_queue starts it at s,1)
    assert queue[1] == "Queue(${HOTLINE_Q},t,,,,,hotline-connect\\,${UNIQUEID})"
    old = parse(generate_extensions(registry, DialplanOptions("agi://10.0.0.5:4573", asterisk_major=20)))
    assert old["hotline-queue"]["s"][1][1] == "Queue(${HOTLINE_Q},t,,,,,,hotline-connect\\,${UNIQUEID})"
    # ';' starts a comment in extensions.conf: no application text may contain one
    for raw in text.splitlines():
        if not raw.startswith(";"):
            assert ";" not in raw, raw


def test_every_route_the_backend_chooses_has_a_path(registry: Registry) -> None:
    plan = parse(generate_extensions(registry, DialplanOptions("agi://127.0.0.1:4573")))
    routes = plan["hotline-route"]
    settings = CallSettings()
    chosen = set()
    for line in registry:
        match = identify_line(registry, [("line", line.number)])
        chosen.add(decide_route(match, registry, settings, local_time=datetime(2026, 1, 5, 10)).route)
        chosen.add(decide_route(match, registry, settings, local_time=datetime(2026, 1, 5, 10),
                                blocked_reason="x").route)
    chosen.add(decide_route(identify_line(registry, [("line", "999")]), registry, settings,
                            local_time=datetime(2026, 1, 5, 10)).route)
    chosen.add("out_of_hours")
    assert chosen <= set(routes)
    assert "i" in routes  # an unexpected route value still reaches the queue
    sub = [app for _, app in routes["subcenter"]]
    assert "Dial(${HOTLINE_DIAL_TARGET},${HOTLINE_DIAL_TIMEOUT})" in sub
    assert sub[sub.index("Dial(${HOTLINE_DIAL_TARGET},${HOTLINE_DIAL_TIMEOUT})") + 1] == \
        "AGI(agi://127.0.0.1:4573/dial_result,,${DIALSTATUS},${UNIQUEID})"
    assert sub[-1] == "Goto(hotline-queue,s,1)"  # no answer / busy / unreachable → 12345
    assert sub[-2] == 'ExecIf($["${DIALSTATUS}" = "ANSWER"]?Hangup())'  # answered: over, not queued again
    assert routes["blocked"][-1][1] == "Hangup(21)"


def test_transfer_contexts_and_hangup_handler(registry: Registry) -> None:
    plan = parse(generate_extensions(registry, DialplanOptions("hagi://agi.example.org", asterisk_major=21)))
    transfer = plan["hotline-transfer"]
    assert {"expert", "subcenter", "decided", "81", "82", "_81XXX.", "_82XXX."} <= set(transfer)
    assert transfer["expert"][0][1] == "AGI(hagi://agi.example.org/transfer_expert)"
    # the dialled digits only: '&', '?' or '=' after 81/82 cannot add a parameter to the AGI URL
    assert transfer["_81XXX."][0][1] == "AGI(hagi://agi.example.org/transfer_expert?target=${FILTER(0-9,${EXTEN:2})})"
    assert transfer["_82XXX."][0][1] == (
        "AGI(hagi://agi.example.org/transfer_subcenter?target=${FILTER(0-9,${EXTEN:2})})")
    xfer = dict((label, app) for label, app in plan["hotline-xfer"]["s"] if label)
    assert xfer == {"dial": "Dial(${HOTLINE_XFER_TARGET},${HOTLINE_XFER_TIMEOUT})",
                    "pool": "Queue(${HOTLINE_XFER_QUEUE},t,,,${HOTLINE_XFER_TIMEOUT})",
                    "callback": "Playback(${HOTLINE_XFER_SOUND})"}
    steps = [app for _, app in plan["hotline-xfer"]["s"]]
    assert "AGI(hagi://agi.example.org/dial_result,${HOTLINE_XFER_ATTEMPT},${DIALSTATUS},${UNIQUEID})" in steps
    hangup = plan["hotline-hangup"]["s"]
    assert hangup[0][1].startswith("AGI(hagi://agi.example.org/hangup,${UNIQUEID},${DIALSTATUS},${ANSWEREDTIME}")
    assert hangup[-1][1] == "Return()"
    assert plan["hotline-connect"]["s"][0][1] == "AGI(hagi://agi.example.org/agent_connect,${ARG1})"
    # Asterisk 21: gosub is Queue()'s 7th argument
    assert plan["hotline-queue"]["s"][1][1] == "Queue(${HOTLINE_Q},t,,,,,hotline-connect\\,${UNIQUEID})"
    # every literal jump lands on something that exists
    for context, extens in plan.items():
        for exten, steps in extens.items():
            for _, app in steps:
                for target_ctx, target_ext in _goto_targets(app):
                    assert target_ctx in plan, (context, exten, app)
                    if "$" not in target_ext:
                        assert any(_matches(p, target_ext) for p in plan[target_ctx]), (context, exten, app)


def test_queues_file_has_12345_skills_and_expert_pools(registry: Registry) -> None:
    text = generate_queues(registry, CallSettings())

    sections = [s.split("(")[0] for s in re.findall(r"^\[([^\]]+)\]", text, re.M)]
    assert len(sections) == len(set(sections)), "a queue defined twice"
    names = set(sections)
    assert "hotline-12345" in names
    for line in registry:
        if line.mode is Mode.DUAL:
            assert f"hotline-12345-{line.skill}" in names and line.expert_pool in names


def test_cli_writes_deterministic_files(tmp_path: Path, capsys) -> None:
    assert main(["dialplan", "--out", str(tmp_path / "a")]) == 0
    assert main(["dialplan", "--out", str(tmp_path / "b")]) == 0
    for name in ("extensions_hotline.conf", "queues_hotline.conf"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert "33 numbers" in capsys.readouterr().out
    assert main(["dialplan", "--agi-url", "http://x"]) == 2


async def test_simulate_drives_a_running_server(agi, pool, capsys) -> None:
    import argparse

    from hotline.cli import build_parser
    from hotline.cli.simulate import run

    args = build_parser().parse_args(["simulate", "--calls", "6", "--concurrency", "3", "--numbers",
                                      "12345,12366,12315", "--host", agi.host, "--port", str(agi.port)])
    assert isinstance(args, argparse.Namespace)
    args.settings = agi.ctx.settings
    assert await run(args) == 0
    out = capsys.readouterr().out
    assert "6 calls" in out and "dual 2" in out and "platform 2" in out and "subcenter 2" in out
    await agi.idle()
    rows = await pool.fetch("SELECT route, state, queue FROM calls")
    assert len(rows) == 6 and all(r["state"] == "abandoned" for r in rows)
    # the sub-centre did not answer (default NOANSWER): back to the 12345 queue, then abandoned
    assert {r["queue"] for r in rows if r["route"] == "subcenter"} == {"hotline-12345"}
