#!/usr/bin/env python3
"""A local three-node OpenSearch cluster, in the foreground, until Ctrl-C or SIGTERM.

    bash scripts/run.sh opensearch          # builds the launcher first
    python scripts/opensearch.py [--nodes 3] [--data .opensearch] [--heap-mb 512]

HTTP on 127.0.0.1:9200, :9201 and :9202 (OPENSEARCH_HTTP_PORT moves the
first; the next node takes the next port), transport on the HTTP port + 100.
Point the service at it with SEARCH_ENGINE=opensearch
SEARCH_OPENSEARCH_URLS=http://127.0.0.1:9200,http://127.0.0.1:9201,http://127.0.0.1:9202.
Three nodes (each cluster-manager eligible) and one replica (the default) lose
any one node without failing a request; a node that stops is started again.
The nodes end with this process, however it ends. Exits 1 when the cluster
cannot start (its ports taken, a node failing).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from search_service.devtools.cluster import ClusterError, LocalCluster


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3, help="nodes (default 3)")
    parser.add_argument("--data", default=".opensearch", help="data folder (default .opensearch)")
    parser.add_argument("--heap-mb", type=int, default=512, help="heap per node in MB (default 512)")
    args = parser.parse_args(argv)
    first = int(os.environ.get("OPENSEARCH_HTTP_PORT", "9200"))
    http = [first + i for i in range(args.nodes)]
    cluster = LocalCluster(
        Path(args.data), args.nodes, http_ports=http, transport_ports=[p + 100 for p in http], heap_mb=args.heap_mb
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cluster.start()
        print("OpenSearch is up: " + ",".join(cluster.urls), flush=True)
        cluster.supervise(stop, lambda message: print(f"opensearch: {message}", file=sys.stderr, flush=True))
    except ClusterError as exc:
        print(f"opensearch: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
