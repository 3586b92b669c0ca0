#!/usr/bin/env python3
"""Rebuild the search index from the corpus: ``python scripts/reindex.py --help``.

The same command as ``search-service reindex``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from search_service.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["reindex", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
