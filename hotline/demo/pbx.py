"""The demo's telephone exchange: a private, real Asterisk (``hotline.telephony.sandbox``)
running the dialplan and queues ``hotline dialplan`` generates, wired to this node like
a production PBX (FastAGI, AMI, Master.csv, queue_log). Citizens, phones and sub-centres
are Local channels: the demo's callers dial in, the demo agents' phones answer, and the
visitor's agent gets a real screen-pop when Asterisk hands them a call.

Used by ``hotline serve --demo`` (``make run``) when an Asterisk is found (see
:func:`hotline.telephony.sandbox.find_asterisk`); without one the demo simulates the
PBX as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from hotline.calls.dialplan import DialplanOptions, generate_extensions, generate_queues
from hotline.calls.settings import CallSettings
from hotline.config import Settings
from hotline.demo.traffic import Callers
from hotline.registry import Registry
from hotline.telephony.sandbox import AsteriskMissing, AsteriskSandbox, find_asterisk

log = logging.getLogger("hotline.demo")

#: sub-centres dialled as Local channels in the demo: most answer, one is often busy
SUBCENTRE_BEHAVIOUR = {"12367": "answer", "12366": "answer", "12360": "busy", "12378": "answer", "12386": "ringout"}


def demo_registry(registry: Registry) -> Registry:
    """The registry with the sub-centres reachable in the sandbox (no SIP there)."""
    lines = []
    for line in registry:
        if line.dial_target:
            line = replace(line, dial_target=f"Local/{SUBCENTRE_BEHAVIOUR.get(line.number, 'answer')}@subcenters",
                           no_answer_timeout=min(line.no_answer_timeout or 20, 10))
        lines.append(line)
    return replace(registry, lines=tuple(lines))


def phone_of(interface: str) -> str:
    """``PJSIP/8001`` → ``Local/8001@agents``: a demo seat's phone in the sandbox."""
    return f"Local/{interface.rsplit('/', 1)[-1]}@agents"


async def start_demo_pbx(settings: Settings, registry: Registry) -> tuple[Settings, Registry, AsteriskSandbox | None]:
    """Start the sandbox PBX for this demo node; returns the settings and registry the
    node runs with (unchanged, and None, when there is no Asterisk or no fixed AGI port)."""
    if not settings.agi.port:
        log.info("demo: no fixed FastAGI port; calls are simulated without a PBX")
        return settings, registry, None
    try:
        install = find_asterisk()
    except AsteriskMissing as exc:
        log.info("demo: %s; calls are simulated without a PBX", exc)
        return settings, registry, None
    registry = demo_registry(registry)
    pbx = AsteriskSandbox(pbx_dir(settings), install, media=True)  # phones send a tone, also after a reload
    pbx.init()
    calls = CallSettings.from_settings(settings)
    # every demo call is recorded (the phones send a tone: there is no voice here)
    recordings = calls.recordings_dir or str((settings.data_dir / "recordings").resolve())
    pbx.write_hotline(generate_extensions(registry, DialplanOptions(calls.agi_base(settings),
                                                                    recordings_dir=recordings)),
                      generate_queues(registry, calls))
    await asyncio.to_thread(pbx.start)
    log.info("demo: Asterisk sandbox running in %s (AMI 127.0.0.1:%d), recordings in %s",
             pbx.root, pbx.ami_port, recordings)
    return pbx.wire(settings, calls={"recordings_dir": recordings}), registry, pbx


def pbx_dir(settings: Settings) -> Path:
    return settings.data_dir / "pbx"


def attached_pbx(settings: Settings) -> AsteriskSandbox | None:
    """The demo PBX this node started (:func:`start_demo_pbx`), if it runs: the settings
    point AMI at it and its control socket answers."""
    calls = CallSettings.from_settings(settings)
    root = pbx_dir(settings)
    if not calls.ami_host or not (root / "run" / "asterisk.ctl").exists():
        return None
    try:
        pbx = AsteriskSandbox(root, find_asterisk(), ami_port=calls.ami_port, ami_username=calls.ami_username,
                              ami_secret=calls.ami_secret)
    except AsteriskMissing:
        return None
    return pbx if "Asterisk" in pbx.rx("core show version") else None


async def stop_demo_pbx(pbx: AsteriskSandbox | None) -> None:
    if pbx is not None:
        await asyncio.to_thread(pbx.stop)


class PbxTraffic:
    """Citizens calling the demo's real PBX: Asterisk queues them, the demo agents'
    phones answer, the simulated agents take breaks now and then."""

    def __init__(self, runtime: Any, pbx: AsteriskSandbox, *, simulated_agents: list[int],
                 rng: random.Random | None = None, mean_gap: float = 20.0) -> None:
        self.runtime = runtime
        self.pbx = pbx
        self.simulated = simulated_agents
        self.rng = rng or random.Random()
        self.mean_gap = mean_gap
        self.callers = Callers(self.rng)

    async def run(self) -> None:
        from hotline.console import seats
        from hotline.demo import data
        from hotline.telephony.pbx import seat_pbx

        # the visitor's own phone talks longer than the simulated agents' phones
        for user in data.USERS:
            if user.interface and not user.simulated:
                ext = user.interface.rsplit("/", 1)[-1]
                await asyncio.to_thread(self.pbx.rx, f"dialplan set global TALK_{ext} 150")
        await asyncio.to_thread(self.pbx.rx, "dialplan set global TALK 45")
        pbx = seat_pbx(self.runtime)
        for user_id in self.simulated:
            try:
                await seats.change_state(self.runtime.pool, user_id, "ready", pbx=pbx)
            except Exception:
                log.exception("demo: simulated agent %s could not sign on", user_id)
        lines = list(data.LINE_WEIGHTS)
        weights = list(data.LINE_WEIGHTS.values())
        breaks = asyncio.ensure_future(self._breaks(pbx))
        try:
            while True:
                await asyncio.sleep(self.rng.expovariate(1 / self.mean_gap))
                line = self.rng.choices(lines, weights)[0]
                stay = self.rng.randrange(60, 300)  # how long the citizen stays on the line at most
                await asyncio.to_thread(self.pbx.call, line, self.callers.next(), stay=stay)
        finally:
            breaks.cancel()

    async def _breaks(self, pbx: Any) -> None:
        """Now and then a simulated agent takes a short break (小休) and comes back."""
        from hotline.console import seats

        while True:
            await asyncio.sleep(self.rng.uniform(60, 180))
            user_id = self.rng.choice(self.simulated)
            try:
                seat = await seats.get_seat(self.runtime.pool, user_id)
                if seat.state != "ready":
                    continue
                await seats.change_state(self.runtime.pool, user_id, "break",
                                         reason=self.rng.choice(["休息", "用餐"]), pbx=pbx)
                await asyncio.sleep(self.rng.uniform(30, 90))
                await seats.change_state(self.runtime.pool, user_id, "ready", pbx=pbx)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("demo: a simulated break failed")
