#!/usr/bin/env python3
"""Serve the HTTP API with gunicorn: ``python scripts/serve.py --help``.

The same command as ``search-service serve``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from search_service.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
