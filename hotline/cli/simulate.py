"""``hotline simulate``: drive a running FastAGI server with simulated calls over real
sockets (demos, load), speaking Asterisk's side of the protocol (hotline.agi.peer)."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter

from hotline.agi.peer import simulate_call
from hotline.registry import load_registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="drive a running FastAGI server with simulated calls",
        description="Play N calls (incoming → optional agent answer → hangup) against a running "
        "`hotline serve` over real FastAGI sockets, and print routes and setup latency.",
    )
    p.add_argument("--calls", type=int, default=10, help="number of calls (default 10)")
    p.add_argument("--concurrency", type=int, default=5, help="calls in flight at once (default 5)")
    p.add_argument("--numbers", help="comma-separated dialled numbers (default: every registry number)")
    p.add_argument("--host", help="FastAGI host (default: agi.host)")
    p.add_argument("--port", type=int, help="FastAGI port (default: agi.port)")
    p.add_argument("--interfaces", help="comma-separated seat interfaces that answer, round robin "
                   "(e.g. PJSIP/8001,PJSIP/8002); default: nobody answers")
    p.add_argument("--talk", type=float, default=0.0, help="seconds between answer and hangup (default 0)")
    p.add_argument("--subcenter-status", default="NOANSWER",
                   help="DIALSTATUS reported for sub-centre routes (default NOANSWER: back to 12345)")
    p.add_argument("--seed", type=int, default=12345, help="random seed for caller numbers")
    p.set_defaults(func=run)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> int:
    settings = args.settings
    host = args.host or ("127.0.0.1" if settings.agi.host in ("0.0.0.0", "::") else settings.agi.host)
    port = args.port or settings.agi.port
    numbers = [n.strip() for n in args.numbers.split(",")] if args.numbers else \
        [line.number for line in load_registry(settings.registry_path)]
    interfaces = [i.strip() for i in args.interfaces.split(",")] if args.interfaces else []
    rng = random.Random(args.seed)
    routes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    setups: list[float] = []
    semaphore = asyncio.Semaphore(max(1, args.concurrency))

    async def one(i: int) -> None:
        dialled = numbers[i % len(numbers)]
        caller = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        async with semaphore:
            try:
                call = await simulate_call(
                    host, port, dialled=dialled, caller=caller,
                    answer_interface=interfaces[i % len(interfaces)] if interfaces else None,
                    talk_seconds=args.talk, dialstatus=args.subcenter_status or "",
                )
                first = call.transcripts[0]
                setups.append(first.seconds)
                routes[call.route or f"<none: {first.outcome}>"] += 1
            except OSError as exc:
                errors[type(exc).__name__] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.calls)))
    elapsed = time.perf_counter() - started
    print(f"{args.calls} calls to agi://{host}:{port} in {elapsed:.2f} s "
          f"({args.calls / elapsed if elapsed else 0:.0f} calls/s, concurrency {args.concurrency})")
    print(f"incoming setup: p50 {_percentile(setups, 0.5) * 1000:.1f} ms, p99 {_percentile(setups, 0.99) * 1000:.1f} ms")
    print("routes: " + ", ".join(f"{k} {v}" for k, v in sorted(routes.items())))
    if errors:
        print("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
        return 1
    return 0
