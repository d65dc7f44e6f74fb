"""``hotline serve``: web + FastAGI + scheduler in one process (roles can be split)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from hotline.node import run_node
from hotline.services import NodeOptions, Service


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the node: web app, FastAGI server, scheduler",
                       description="Run web app + FastAGI server + scheduler in one asyncio process. "
                       "Use --no-* flags to split roles across nodes.")
    p.add_argument("--no-web", action="store_true", help="do not serve HTTP")
    p.add_argument("--no-agi", action="store_true", help="do not serve FastAGI")
    p.add_argument("--no-scheduler", action="store_true", help="do not run periodic jobs")
    p.add_argument("--no-workers", action="store_true", help="do not run background workers")
    p.add_argument("--migrate", action="store_true", help="apply migrations and sync the registry first")
    p.add_argument("--demo", action="store_true", help="seed demo users and simulated traffic (never in production)")
    p.add_argument("--web-port", type=int, help="override the web port")
    p.add_argument("--agi-port", type=int, help="override the FastAGI port")
    p.set_defaults(func=run)


def _print_ready(services: list[Service]) -> None:
    print("hotline is running:", flush=True)
    for service in services:
        print(f"  {service.describe()}", flush=True)
    print("  stop with Ctrl-C (SIGINT) or SIGTERM", flush=True)


async def run(args: argparse.Namespace) -> int:
    settings = args.settings
    if args.web_port is not None:
        settings = replace(settings, web=replace(settings.web, port=args.web_port))
    if args.agi_port is not None:
        settings = replace(settings, agi=replace(settings.agi, port=args.agi_port))
    demo = args.demo or settings.demo
    if demo:
        settings = replace(settings, demo=True)
    options = NodeOptions(
        web=not args.no_web, agi=not args.no_agi, scheduler=not args.no_scheduler,
        workers=not args.no_workers, demo=demo,
    )
    await run_node(settings, options, do_migrate=args.migrate, on_ready=_print_ready)
    return 0
