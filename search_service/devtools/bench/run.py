"""The whole benchmark: every size's builds in rounds, their queries, a server each,
HTTP, hostile input and the development collections, into one JSON report."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_service.devtools.bench.corpus import EVAL, base_passages, eval_queries, write_corpus
from search_service.devtools.bench.devcorpora import dev_corpora_bench
from search_service.devtools.bench.hostile import hostile_bench, hostile_files_bench
from search_service.devtools.bench.httpload import http_bench, server_probe
from search_service.devtools.bench.measure import (
    Job,
    folder_mb,
    interleaved_runs,
    median_of,
    paired_ratio,
    round_ratios,
)
from search_service.devtools.bench.queries import PEERS, cluster_queries, ours_queries
from search_service.ingest.reindex import PARALLEL_MIN_PASSAGES

SEGMENTATION = "segmentation_only"  # the ceiling's runs: jieba alone, one core


def our_variants(opensearch_urls: str | None = None) -> list[tuple[str, str, dict[str, str]]]:
    """(name, segmenter, environment) of each configuration of ours to measure: jieba, rjieba
    when installed, and the OpenSearch engine on the cluster at ``opensearch_urls``."""
    variants: list[tuple[str, str, dict[str, str]]] = [("ours", "jieba", {})]
    if importlib.util.find_spec("rjieba") is not None:
        variants.append(("ours+rjieba", "rjieba", {}))
    if opensearch_urls:
        variants.append(
            (
                "ours on opensearch",
                "jieba",
                # No replica: the figures measure one copy of the index, as the other engines'.
                {
                    "SEARCH_ENGINE": "opensearch",
                    "SEARCH_OPENSEARCH_URLS": opensearch_urls,
                    "SEARCH_OPENSEARCH_REPLICAS": "0",
                },
            )
        )
    return variants


@dataclass
class _Run:
    """What every step of one benchmark run shares."""

    workdir: Path
    queries: list[str]
    warmup: list[str]  # other queries, never the measured ones
    variants: list[tuple[str, str, dict[str, str]]]
    repeat: int
    log: Callable[[str], None]
    run_id: str = field(default_factory=lambda: os.urandom(3).hex())

    def env(self, base_env: dict[str, str], size: int) -> dict[str, str]:
        """A variant's environment at ``size`` (an OpenSearch variant: an alias of its own)."""
        return {**base_env, "SEARCH_OPENSEARCH_PREFIX": f"bench-{self.run_id}-{size}"} if base_env else {}

    def index_dir(self, name: str, size: int) -> Path:
        return self.workdir / f"{name.replace(' ', '-')}-{size}"


def run_bench(
    sizes: list[int],
    query_count: int,
    http_seconds: float,
    clients: list[int],
    peers: bool,
    workdir: Path,
    eval_dir: Path = EVAL,
    log: Callable[[str], None] = print,
    peer_sizes: list[int] | None = None,
    repeat: int = 1,
    opensearch_urls: str | None = None,
) -> dict[str, Any]:
    texts = base_passages(eval_dir)
    drawn = eval_queries(eval_dir, 2 * query_count)
    report_files = hostile_files_bench(workdir)
    log("hostile files: " + ", ".join(f"{k} {v['seconds']} s" for k, v in report_files.items()))
    dev = dev_corpora_bench(workdir, eval_dir, repeat=max(3, repeat))
    log(
        f"dev corpora: ours {dev['ours']['seconds']:.1f} s, naive {dev['naive']['seconds']:.1f} s, "
        f"incremental {dev['incremental']['seconds']:.1f} s"
    )
    run = _Run(workdir, drawn[:query_count], drawn[query_count:], our_variants(opensearch_urls), repeat, log)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "sizes": {},
        "hostile_files": report_files,
        "dev_corpora": dev,
    }
    for size in sizes:
        with_peers = peers and (peer_sizes is None or size in peer_sizes)
        report["sizes"][str(size)] = _size_row(run, texts, size, with_peers)
    if http_seconds > 0:
        size = sorted(sizes)[len(sizes) // 2]
        report["http"] = _http(run, size, http_seconds, clients)
        report["hostile"] = hostile_bench(
            run.index_dir(run.variants[0][0], size),
            count=max(20, min(200, query_count)),
            inflate=max(50, min(2000, 2 * query_count)),
        )
    return report


# The naive peer (Whoosh's own writer and matchers) takes hours beyond this size; tantivy
# runs at every size.
NAIVE_MAX_PASSAGES = 200_000


def peers_at(size: int) -> tuple[tuple[str, Any], ...]:
    """The peers measured at ``size`` passages."""
    return tuple((name, timer) for name, timer in PEERS if name != "naive" or size <= NAIVE_MAX_PASSAGES)


def _size_row(run: _Run, texts: list[str], size: int, with_peers: bool) -> dict[str, Any]:
    """Every build of ``size`` passages, the ceiling's and the peers' included, in rounds
    (see :func:`interleaved_runs`; each engine's index is its last round's), then each
    one's queries and server."""
    row: dict[str, Any] = {"index": {}, "queries": {}, "server": {}}
    corpus_dir = run.workdir / f"corpus-{size}"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    nbytes = write_corpus(corpus_dir / "bench.jsonl", texts, size)
    row["corpus_mb"] = round(nbytes / 1e6, 2)
    jobs: dict[str, Job] = {}
    for name, segmenter, base_env in run.variants:
        ours_dir = run.index_dir(name, size)
        jobs[name] = ("ours", (str(corpus_dir), str(ours_dir), segmenter), ours_dir, run.env(base_env, size))
    jobs[SEGMENTATION] = ("segmentation", (str(corpus_dir / "bench.jsonl"),), None, None)
    peers = peers_at(size) if with_peers else ()
    for name, _ in peers:
        peer_dir = run.workdir / f"{name}-{size}"
        jobs[name] = (name, (str(corpus_dir / "bench.jsonl"), str(peer_dir)), peer_dir, None)
    runs = interleaved_runs(run.repeat, jobs)
    seg = median_of(runs[SEGMENTATION])
    row["segmentation_only"] = {**seg, "passages_per_s": round(seg["passages"] / seg["seconds"], 1)}
    for name, _, _ in run.variants:
        _ours(run, row, name, jobs[name], runs[name], runs[SEGMENTATION], nbytes, size)
    for name, timer in peers:
        built = jobs[name][2]
        assert built is not None
        peer = median_of(runs[name])
        peer.update(
            passages_per_s=round(peer["passages"] / peer["seconds"], 1),
            index_mb=folder_mb(built),
            ceiling_ratio=paired_ratio(runs[name], runs[SEGMENTATION]),  # one process
            ceiling_rounds=round_ratios(runs[name], runs[SEGMENTATION]),
        )
        row["index"][name] = peer
        row["queries"][name] = timer(built, run.queries, run.warmup)
        run.log(f"{size}: {name} indexed in {peer['seconds']:.1f} s")
    return row


def bytes_per_passage(index_dir: Path) -> dict[str, float]:
    """The index's bytes a passage, by part (the engine's :meth:`size_by_part`), largest first."""
    from search_service.search.service import SearchService
    from search_service.settings import Settings

    version = SearchService(Settings.from_env(index_dir=str(index_dir))).current().index
    passages = max(1, int(version.manifest.get("passage_count") or 0))
    parts = sorted(version.size_by_part().items(), key=lambda kv: -kv[1])
    return {part: round(size / passages, 1) for part, size in parts}


def _ours(
    run: _Run,
    row: dict[str, Any],
    name: str,
    job: Job,
    runs: list[dict[str, Any]],
    ceiling: list[dict[str, Any]],
    nbytes: int,
    size: int,
) -> None:
    """A variant of ours at one size: its build against the ceiling, its queries, its server."""
    ours_dir, env = job[2], job[3] or {}
    assert ours_dir is not None
    build = median_of(runs)
    # How close to jieba alone, on as many cores as the build used.
    cores = min(os.cpu_count() or 1, max(1, build["passages"] // PARALLEL_MIN_PASSAGES))
    build.update(
        passages_per_s=round(build["passages"] / build["seconds"], 1),
        mb_per_s=round(nbytes / 1e6 / build["seconds"], 3),
        index_mb=cluster_mb(env) if env else folder_mb(ours_dir),
        ceiling_ratio=paired_ratio(runs, ceiling, cores),
        ceiling_rounds=round_ratios(runs, ceiling, cores),
    )
    if not env:
        build["bytes_per_passage"] = bytes_per_passage(ours_dir)
    row["index"][name] = build
    run.log(f"{size}: {name} indexed in {build['seconds']:.1f} s")
    row["queries"][name] = ours_queries(ours_dir, run.queries, run.warmup, env)
    if env:
        row["queries"]["opensearch cluster alone"] = cluster_queries(run.queries, run.warmup, env)
    row["server"][name] = server_probe(ours_dir, run.queries, env)
    run.log(f"{size}: {name} queries p50 {row['queries'][name]['p50_ms']} ms; server {row['server'][name]}")


def _http(run: _Run, size: int, seconds: float, clients: list[int]) -> dict[str, Any]:
    """Each variant's HTTP step at ``size``; then the first again with every request ranked
    and highlighted (the queries repeat during a step: the result cache answers repeats)."""
    out: dict[str, Any] = {"passages": size, "variants": {}}
    for name, _, base_env in run.variants:
        out["variants"][name] = http_bench(
            run.index_dir(name, size), run.queries, seconds, clients, env=run.env(base_env, size)
        )
    name = run.variants[0][0]
    out["variants"][f"{name}, result cache off"] = http_bench(
        run.index_dir(name, size), run.queries, seconds, clients, env={"SEARCH_RESULT_CACHE_MB": "0"}
    )
    return out


def cluster_mb(env: dict[str, str]) -> float:
    """The size of the OpenSearch version just built (primaries and replicas)."""
    from search_service.engine.opensearch.client import make_client
    from search_service.settings import Settings

    settings = Settings.from_env({**os.environ, **env})
    stats = make_client(settings).indices.stats(index=settings.opensearch_prefix, metric="store")
    return round(stats["_all"]["total"]["store"]["size_in_bytes"] / 1e6, 1)


def main_bench(
    sizes: list[int],
    query_count: int,
    http_seconds: float,
    clients: list[int],
    peers: bool,
    out: Path,
    keep: bool = False,
    eval_dir: Path = EVAL,
    peer_sizes: list[int] | None = None,
    repeat: int = 1,
    opensearch: str | None = None,
) -> dict[str, Any]:
    """The whole benchmark. ``opensearch``: node URLs of a cluster to measure the
    OpenSearch engine on, or ``local`` for a two-node cluster started here (and stopped)."""
    workdir = Path(tempfile.mkdtemp(prefix="search-bench-"))
    cluster = None
    try:
        if opensearch == "local":
            from search_service.devtools.cluster import LocalCluster

            cluster = LocalCluster(workdir / "opensearch", nodes=2, heap_mb=1024)
            cluster.start()
            opensearch = ",".join(cluster.urls)
        report = run_bench(
            sizes,
            query_count,
            http_seconds,
            clients,
            peers,
            workdir,
            eval_dir,
            log=lambda m: print(m, file=sys.stderr, flush=True),
            peer_sizes=peer_sizes,
            repeat=repeat,
            opensearch_urls=opensearch,
        )
    finally:
        if cluster is not None:
            cluster.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report
