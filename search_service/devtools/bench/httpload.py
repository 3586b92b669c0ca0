"""HTTP load against a real ``search-service serve``: kinds of requests taking turns,
requests per second and latency, cold start and worker memory."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_service.devtools.bench.measure import percentile, worker_memory_mb
from search_service.devtools.ports import free_port


class _Load:
    """Requests sent so far by one kind of load: latencies, errors, seconds spent."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.seconds = 0.0
        self.sent = itertools.count()  # the next request's number, continued across slices

    def run(self, url_for: Callable[[int], str], clients: int, seconds: float) -> None:
        """``clients`` threads, each sending requests back to back for ``seconds``."""
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def client() -> None:
            local, errors = [], 0
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    with urllib.request.urlopen(url_for(next(self.sent)), timeout=10) as r:
                        r.read()
                        ok = r.status == 200
                except Exception:  # noqa: BLE001  (any failure counts as an error)
                    ok = False
                local.append((time.perf_counter() - began) * 1000)
                errors += not ok
            with lock:
                self.latencies.extend(local)
                self.errors += errors

        threads = [threading.Thread(target=client) for _ in range(clients)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.seconds += time.monotonic() - began

    def summary(self, clients: int) -> dict[str, float]:
        return {
            "clients": clients,
            "requests": len(self.latencies),
            "rps": round(len(self.latencies) / self.seconds, 1),
            "p50_ms": round(percentile(self.latencies, 50), 2),
            "p99_ms": round(percentile(self.latencies, 99), 2),
            "errors": self.errors,
        }


def http_compare(
    loads: dict[str, Callable[[int], str]], clients: int, seconds: float, slices: int = 5
) -> dict[str, dict[str, float]]:
    """``clients`` threads of each kind sending requests back to back for ``seconds``, taking turns in ``slices``
    slices each: on a machine whose speed drifts (this one's varies by ±15 %),
    kinds compared as a ratio then meet the same conditions."""
    done = {name: _Load() for name in loads}
    for _ in range(slices):
        for name, url_for in loads.items():
            done[name].run(url_for, clients, seconds / slices)
    return {name: load.summary(clients) for name, load in done.items()}


def serve(
    index_dir: Path, port: int, workers: int = 2, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``search-service serve`` (with ``env`` added to the environment); returns it
    and the seconds to the first answered query."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "search_service.cli",
            "serve",
            "--index",
            str(index_dir),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}/search?q=" + urllib.parse.quote("医保卡")
    while time.perf_counter() - began < 60:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - began
        except OSError:  # not listening yet (URLError and HTTPError are OSErrors)
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not start")


def server_probe(index_dir: Path, queries: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """``serve --workers 2``: seconds from start to the first answer, then memory per
    worker after answering ``queries`` once. RSS counts every page a worker
    touches, including the memory-mapped index (file cache, shared by both
    workers) and what it shares with the master; PSS splits shared pages
    between the processes sharing them; USS is the worker's own."""
    port = free_port()
    proc, cold = serve(index_dir, port, env=env)
    try:
        base = f"http://127.0.0.1:{port}/search?q="
        for q in queries:
            with urllib.request.urlopen(base + urllib.parse.quote(q[:256]), timeout=30) as r:
                r.read()
        return {"cold_start_s": round(cold, 2), **worker_memory_mb(proc, workers=2)}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def http_bench(
    index_dir: Path, queries: list[str], seconds: float, clients: list[int], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Requests/s and latency of ``/search`` (cycling through ``queries``) and of
    ``/health``, at each number of concurrent clients, on one fresh server."""
    port = free_port()
    proc, cold = serve(index_dir, port, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        encoded = [base + "/search?q=" + urllib.parse.quote(q[:256]) for q in queries]
        out: dict[str, Any] = {"cold_start_s": round(cold, 2), "search": [], "health": []}
        for n in clients:
            found = http_compare(
                {"search": lambda i: encoded[i % len(encoded)], "health": lambda i: base + "/health"}, n, seconds
            )
            out["search"].append(found["search"])
            out["health"].append(found["health"])
        out.update(worker_memory_mb(proc))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)
