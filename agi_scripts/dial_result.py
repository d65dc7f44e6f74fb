#!/usr/bin/env python3
"""Classic AGI entry point ``dial_result`` (pyst2), for PBX hosts that run AGI(script):

    same => n,AGI(/opt/hotline/agi_scripts/dial_result.py,${HOTLINE_XFER_ATTEMPT},${DIALSTATUS},${UNIQUEID})

Runs the same call flow as ``agi://…/dial_result`` on the FastAGI server. Set
HOTLINE_DATABASE_URL (or [database] url) so the script reaches PostgreSQL; without
it, or with the database down, the call is routed from the registry and its
record journaled under data_dir/journal. Use the project's virtualenv Python
(edit the first line, or AGI(/opt/hotline/.venv/bin/python,…)).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hotline.agi.pyst import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("dial_result"))
