#!/usr/bin/env python3
"""Measure ranking quality on a judged collection: ``python scripts/evaluate.py --help``.

The same command as ``search-service evaluate``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from search_service.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
