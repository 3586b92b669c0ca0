#!/usr/bin/env python3
"""Load a live server while reindex switches versions; report requests, errors, wrong answers, p50/p99.

    python scripts/loadtest.py [--corpus corpus] [--clients 8] [--seconds 20] [--switches 2] [--workers 2]

Bounded and loopback only. Exit 0 when there were no errors and no wrong answers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from search_service.devtools.loadtest import run_load


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="corpus", help="corpus folder (copied; default corpus/)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=20, help="duration (default 20)")
    parser.add_argument("--switches", type=int, default=2, help="reindexes during the run (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    args = parser.parse_args(argv)
    report = run_load(Path(args.corpus), args.seconds, args.clients, args.switches, args.workers)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["errors"] == 0 and report["wrong_answers"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
