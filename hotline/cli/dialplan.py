"""``hotline dialplan --out DIR``: write extensions_hotline.conf and queues_hotline.conf
from the registry (deterministic; see docs/ASTERISK.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotline.calls.dialplan import DialplanOptions, generate_extensions, generate_queues
from hotline.calls.settings import CallSettings
from hotline.registry import RegistryInvalid, load_registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dialplan", help="generate the Asterisk dialplan and queues for every hotline number",
        description="Write extensions_hotline.conf and queues_hotline.conf from the hotline registry. "
        "Every number enters AGI(agi://…/incoming); if the AGI fails (AGISTATUS != SUCCESS) the "
        "call still goes to the 12345 queue. Same registry, same output.",
    )
    p.add_argument("--out", help="directory to write into (default: print extensions to stdout)")
    p.add_argument("--registry", help="registry file (default: the configured one)")
    p.add_argument("--agi-url", help="FastAGI base URL, e.g. agi://10.0.0.5:4573 or hagi://agi.example.org "
                   "(default: [calls] agi_url, else agi://<agi.host>:<agi.port>)")
    p.add_argument("--asterisk", type=int, default=22, metavar="MAJOR",
                   help="Asterisk major version (default 22, the current LTS; 20 and older take Queue()'s gosub as the 8th argument)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = args.settings
    try:
        registry = load_registry(args.registry or settings.registry_path)
    except RegistryInvalid as exc:
        print(exc.message, file=sys.stderr)
        return 2
    calls = CallSettings.from_settings(settings)
    base = (args.agi_url or calls.agi_base(settings)).rstrip("/")
    if not base.startswith(("agi://", "hagi://")):
        print(f"hotline: error: --agi-url must start with agi:// or hagi://, got {base!r}", file=sys.stderr)
        return 2
    options = DialplanOptions(agi_base=base, asterisk_major=args.asterisk, recordings_dir=calls.recordings_dir)
    extensions = generate_extensions(registry, options)
    queues = generate_queues(registry, calls)
    if not args.out:
        sys.stdout.write(extensions)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "extensions_hotline.conf").write_text(extensions, encoding="utf-8")
    (out / "queues_hotline.conf").write_text(queues, encoding="utf-8")
    print(f"wrote {out / 'extensions_hotline.conf'} ({len(registry)} numbers) and {out / 'queues_hotline.conf'}")
    return 0
