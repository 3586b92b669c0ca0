#!/usr/bin/env python3
"""Write a long-document form of a judged collection (for evaluate): ``python scripts/longdocs.py --help``.

The same command as ``search-service longdocs``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from search_service.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["longdocs", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
