#!/usr/bin/env python3
"""Benchmark indexing, queries and HTTP against peers: ``python scripts/bench.py --help``.

The same command as ``search-service bench``; needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from search_service.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
