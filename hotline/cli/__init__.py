"""The ``hotline`` command. Subcommands live in modules of this package; each has
``register(subparsers)`` and sets ``func`` (sync or async) on its parser."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable, Sequence

from hotline import __version__
from hotline.config import load_settings
from hotline.errors import HotlineError
from hotline.logs import setup_logging
from hotline.node import check_sections


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Telephony and ticketing backend for the merged 12345 hotline.",
    )
    parser.add_argument("--version", action="version", version=f"hotline {__version__}")
    parser.add_argument("--config", help="path to hotline.toml (default: config/hotline.toml or $HOTLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency on Linux): the node's
    FastAGI sessions, AMI stream and PostgreSQL round trips are mostly event-loop and
    socket work, which uvloop does in C (bench/pbx_bench.py). None: asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover (not on this platform)
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        check_sections(settings)
        setup_logging(settings.log_level, settings.log_format)
        args.settings = settings
        result = args.func(args)
        if inspect.iscoroutine(result):
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                result = runner.run(result)
        return int(result or 0)
    except HotlineError as exc:
        print(f"hotline: error: {exc.message}", file=sys.stderr)
        return 2 if exc.code in ("registry_invalid", "config_invalid") else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
