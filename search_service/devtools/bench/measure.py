"""Running, timing and comparing the benchmark's builds and queries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_child(job: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the build ``job`` of :mod:`.jobs` in a fresh interpreter (``env`` added to its
    environment); the figures it prints."""
    out = subprocess.run(
        [sys.executable, "-m", "search_service.devtools.bench.jobs", job, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{job} failed: {out.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


Job = tuple[str, tuple[str, ...], Path | None, dict[str, str] | None]  # job, arguments, output folder, env


def interleaved_runs(repeat: int, jobs: dict[str, Job]) -> dict[str, list[dict[str, Any]]]:
    """``run_child`` of every job ``repeat`` times, one round of all the jobs at a
    time (each output folder emptied first). A slow spell of this machine lasts
    minutes: run in blocks, it could fall on one job's runs and not on the
    other's; in rounds it falls on the jobs of one round alike, and
    :func:`paired_ratio` cancels it."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    for _ in range(max(1, repeat)):
        for name, (job, args, out, env) in jobs.items():
            if out is not None:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
            runs[name].append(run_child(job, *args, env=env))
    return runs


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, and every run's seconds in the order they ran
    (round by round: the ratios of one round can be read from the report)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "runs_seconds": [round(r["seconds"], 2) for r in runs]}


def round_ratios(
    runs: list[dict[str, Any]],
    against: list[dict[str, Any]],
    scale: float = 1.0,
    rate: Callable[[dict[str, Any]], float] = lambda r: r["passages"] / r["seconds"],
) -> list[float]:
    """One job's ``rate`` (passages per second) over another's times ``scale``,
    each run against the run of its own round, in round order."""
    return [round(rate(r) / (rate(a) * scale), 2) for r, a in zip(runs, against)]


def paired_ratio(
    runs: list[dict[str, Any]],
    against: list[dict[str, Any]],
    scale: float = 1.0,
    rate: Callable[[dict[str, Any]], float] = lambda r: r["passages"] / r["seconds"],
) -> float:
    """The median of :func:`round_ratios` (rounding keeps their order: the same as the rounded median)."""
    ratios = sorted(round_ratios(runs, against, scale, rate))
    return ratios[len(ratios) // 2]


def median_run(repeat: int, job: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``run_child`` ``repeat`` times into the emptied folder ``args[1]``; :func:`median_of` the runs."""
    return median_of(interleaved_runs(repeat, {"run": (job, args, Path(args[1]), env)})["run"])


def folder_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def worker_memory_mb(proc: subprocess.Popen[bytes], workers: int | None = None) -> dict[str, list[float]]:
    """Memory of each worker of the server ``proc`` (waiting up to 10 s until ``workers`` of them run)."""
    import psutil

    deadline = time.monotonic() + 10
    children = psutil.Process(proc.pid).children()
    while workers is not None and len(children) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
        children = psutil.Process(proc.pid).children()
    infos = [c.memory_full_info() for c in children]
    return {
        "worker_rss_mb": [round(m.rss / 1e6, 1) for m in infos],
        "worker_pss_mb": [round(m.pss / 1e6, 1) for m in infos],
        "worker_uss_mb": [round(m.uss / 1e6, 1) for m in infos],
        # RSS less file-backed pages (the mapped index, libraries): the worker's
        # heap, part of it still shared copy-on-write with the master.
        "worker_anon_mb": [round((m.rss - m.shared) / 1e6, 1) for m in infos],
    }


def time_queries(run: Callable[[str], Any], queries: list[str], warmup: list[str]) -> dict[str, float]:
    """Latency of ``queries`` in a fresh process (cold: nothing cached but what 20
    queries bring), then again after ``warmup`` — other queries, never the
    measured ones — as in a server that has been answering for a while."""
    for q in warmup[:20]:
        run(q)
    out: dict[str, float] = {"queries": len(queries)}
    for phase in ("cold", "warm"):
        if phase == "warm":
            for q in warmup:
                run(q)
        latencies = []
        for q in queries:
            began = time.perf_counter()
            run(q)
            latencies.append((time.perf_counter() - began) * 1000)
        prefix = "" if phase == "warm" else "cold_"
        out[f"{prefix}p50_ms"] = round(percentile(latencies, 50), 2)
        out[f"{prefix}p99_ms"] = round(percentile(latencies, 99), 2)
    return out
