"""The benchmark suite: indexing, in-process queries, HTTP, cold start, and peers.

Bounded (every loop stops by count or time) and loopback only. Each figure of
ours is reported next to the same figure of two peers measured in the same run
on the same corpus and queries:

* ``naive``: what jieba's README gives a user — Whoosh with
  ``jieba.analyse.ChineseAnalyzer`` on one stored text field, one process;
* ``tantivy``: the tantivy Python bindings fed the same jieba search-mode
  tokens (a compiled engine: the floor of what the writer could cost).

Indexing runs in a subprocess per build, so peak memory (ru_maxrss) is that
build's own.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_service.ingest.corpus import CorpusReader
from search_service.ingest.passages import PassageSplitter
from search_service.ingest.reindex import PARALLEL_MIN_PASSAGES
from search_service.devtools.ports import free_port

EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"  # ../shared/eval beside the project


# -- the corpus --------------------------------------------------------------


def base_passages(eval_dir: Path) -> list[str]:
    """Passage-sized texts from the evaluation collections (both scripts)."""
    texts = []
    splitter = PassageSplitter(50, 300)
    for name in ("cmrc2018/corpus.jsonl", "drcd-dev/corpus.jsonl"):
        for doc in CorpusReader(eval_dir / name).read().documents:
            texts.extend(p.text for p in splitter.split(doc))
    return texts


def write_corpus(path: Path, texts: list[str], size: int) -> int:
    """``size`` one-passage documents, replicating ``texts`` deterministically; returns bytes."""
    total = 0
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(size):
            text = texts[i % len(texts)]
            replica = i // len(texts)
            if replica:
                # Replicas differ a little, as real near-duplicates do.
                text = f"{text}（{replica}）"
            total += len(text.encode("utf-8"))
            fh.write(json.dumps({"id": f"b{i}", "title": "", "text": text}, ensure_ascii=False) + "\n")
    return total


def eval_queries(eval_dir: Path, count: int) -> list[str]:
    queries = []
    for name in ("cmrc2018/queries.jsonl", "drcd-dev/queries_zhs.jsonl", "drcd-dev/queries.jsonl"):
        with open(eval_dir / name, encoding="utf-8") as fh:
            queries.extend(json.loads(line)["text"] for line in fh if line.strip())
    queries = [q for q in queries if q.strip()]
    random.Random(42).shuffle(queries)
    return queries[:count]


# -- measuring helpers ---------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# Appended to every child: its own peak RSS, and that of the writer processes it forked.
# Run first in every child: a thread that samples the memory of the whole process tree
# (the child and the writer processes it forks) once a second, for the build's total
# peak: proportional set sizes, so that pages forked processes share count once, not
# once per process (reading a process's PSS stalls it, so not more often).
TREE_SAMPLER = """
import threading as _t, time as _tm
try:
    import psutil as _ps
except ImportError:
    _ps = None
_tree_peak = [0]
def _pss(p):
    try:
        return p.memory_full_info().pss
    except (AttributeError, _ps.AccessDenied):
        return p.memory_info().rss
def _sample():
    me = _ps.Process()
    while True:
        try:
            total = _pss(me) + sum(_pss(c) for c in me.children(recursive=True))
        except _ps.Error:
            total = 0
        _tree_peak[0] = max(_tree_peak[0], total)
        _tm.sleep(1.0)
if _ps is not None:
    _t.Thread(target=_sample, daemon=True).start()
"""

# Run last: the largest single process (exact), and the largest sum over the tree as sampled
# (a peak shorter than a second can be missed).
PEAK = """
import resource as _r
print(json.dumps({"peak_rss_mb": round(max(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss,
                                            _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1),
                  "peak_tree_mb": round(_tree_peak[0] / 2**20, 1) if _ps is not None else None}))
"""


def run_child(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (``env`` added to its environment); it prints JSON objects, merged here."""
    out = subprocess.run([sys.executable, "-c", TREE_SAMPLER + code + PEAK, *args], capture_output=True, text=True,
                         check=False,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"child failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = {}
    for line in out.stdout.strip().splitlines()[-2:]:
        result.update(json.loads(line))
    return result


Job = tuple[str, tuple[str, ...], Path | None, dict[str, str] | None]  # code, arguments, output folder, env


def interleaved_runs(repeat: int, jobs: dict[str, Job]) -> dict[str, list[dict[str, Any]]]:
    """``run_child`` of every job ``repeat`` times, one round of all the jobs at a
    time (each output folder emptied first). A slow spell of this machine lasts
    minutes: run in blocks, it could fall on one job's runs and not on the
    other's; in rounds it falls on the jobs of one round alike, and
    :func:`paired_ratio` cancels it."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    for _ in range(max(1, repeat)):
        for name, (code, args, out, env) in jobs.items():
            if out is not None:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
            runs[name].append(run_child(code, *args, env=env))
    return runs


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, and every run's seconds in the order they ran
    (round by round: the ratios of one round can be read from the report)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "runs_seconds": [round(r["seconds"], 2) for r in runs]}


def round_ratios(runs: list[dict[str, Any]], against: list[dict[str, Any]], scale: float = 1.0,
                 rate: Callable[[dict[str, Any]], float] = lambda r: r["passages"] / r["seconds"]) -> list[float]:
    """One job's ``rate`` (passages per second) over another's times ``scale``,
    each run against the run of its own round, in round order."""
    return [round(rate(r) / (rate(a) * scale), 2) for r, a in zip(runs, against)]


def paired_ratio(runs: list[dict[str, Any]], against: list[dict[str, Any]], scale: float = 1.0,
                 rate: Callable[[dict[str, Any]], float] = lambda r: r["passages"] / r["seconds"]) -> float:
    """The median of :func:`round_ratios` (rounding keeps their order: the same as the rounded median)."""
    ratios = sorted(round_ratios(runs, against, scale, rate))
    return ratios[len(ratios) // 2]


def median_run(repeat: int, code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``run_child`` ``repeat`` times into the emptied folder ``args[1]``; :func:`median_of` the runs."""
    return median_of(interleaved_runs(repeat, {"run": (code, args, Path(args[1]), env)})["run"])


def folder_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


OURS_BUILD = """
import json, sys, time
from search_service.ingest.reindex import build_index
from search_service.settings import Settings
began = time.perf_counter()
report = build_index(Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2], segmenter=sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - began, "passages": report.passages}))
"""

NAIVE_BUILD = """
import json, sys, time, warnings, logging
warnings.simplefilter("ignore")
import jieba
jieba.setLogLevel(logging.WARNING)
from jieba.analyse import ChineseAnalyzer
from whoosh import fields, index
began = time.perf_counter()
schema = fields.Schema(id=fields.ID(stored=True), content=fields.TEXT(stored=True, analyzer=ChineseAnalyzer()))
ix = index.create_in(sys.argv[2], schema)
w = ix.writer(limitmb=256)
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line); w.add_document(id=d["id"], content=d["text"]); n += 1
w.commit()
print(json.dumps({"seconds": time.perf_counter() - began, "passages": n}))
"""

TANTIVY_BUILD = """
import json, sys, time, warnings, logging
warnings.simplefilter("ignore")
import jieba, tantivy
jieba.setLogLevel(logging.WARNING)
began = time.perf_counter()
sb = tantivy.SchemaBuilder()
sb.add_text_field("id", stored=True, tokenizer_name="raw")
sb.add_text_field("content", stored=True, tokenizer_name="whitespace")
ix = tantivy.Index(sb.build(), path=sys.argv[2])
w = ix.writer(heap_size=256_000_000, num_threads=2)
n = 0
seg = 0.0
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    t = time.perf_counter(); toks = " ".join(jieba.cut_for_search(d["text"])); seg += time.perf_counter() - t
    w.add_document(tantivy.Document(id=d["id"], content=toks)); n += 1
w.commit(); w.wait_merging_threads()
print(json.dumps({"seconds": time.perf_counter() - began, "passages": n, "segment_seconds": seg}))
"""

OURS_INCREMENTAL = """
import json, sys, time
from search_service.ingest.reindex import build_index
from search_service.settings import Settings
began = time.perf_counter()
report = build_index(Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2], segmenter=sys.argv[3]),
                     incremental=True)
print(json.dumps({"seconds": time.perf_counter() - began, "passages": report.passages,
                  "reanalyzed": report.reanalyzed, "mode": report.mode}))
"""

SEGMENT_ONLY = """
import json, sys, time, warnings, logging
warnings.simplefilter("ignore")
import jieba
jieba.setLogLevel(logging.WARNING)
jieba.initialize()
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
began = time.perf_counter()
for t in texts:
    list(jieba.cut_for_search(t))
print(json.dumps({"seconds": time.perf_counter() - began, "passages": len(texts)}))
"""


# -- queries -----------------------------------------------------------------------


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


def ours_queries(index_dir: Path, queries: list[str], warmup: list[str], env: dict[str, str] | None = None
                 ) -> dict[str, float]:
    from search_service.search.request import SearchRequest
    from search_service.search.service import SearchService
    from search_service.settings import Settings

    # Every query ranked and highlighted: the result cache would answer the warm
    # pass's repeats.
    settings = Settings.from_env({**os.environ, **(env or {})}, index_dir=str(index_dir), result_cache_mb=0)
    service = SearchService(settings)
    return time_queries(lambda q: service.search(SearchRequest.create(settings, q=q[:256], size=10)), queries, warmup)


def cluster_queries(queries: list[str], warmup: list[str], env: dict[str, str]) -> dict[str, float]:
    """The OpenSearch cluster's own share of the same queries: each query's plan
    (made beforehand, untimed) sent as the engine sends it; wall time at the
    client, and the ``took`` the cluster reports."""
    from search_service.engine.opensearch.version import query
    from search_service.search.service import SearchService
    from search_service.settings import Settings

    settings = Settings.from_env({**os.environ, **env})
    service = SearchService(settings)
    version = service.current()
    index = version.index
    plans = {q: service.build_query(version, q[:256]) for q in queries + warmup}
    took: list[float] = []

    def run(q: str) -> None:
        plan = plans[q]
        if not plan.parts and plan.must is None:
            return
        found = index.client.search(index=index.index, search_type="dfs_query_then_fetch", body={
            "query": query(plan), "size": 10, "sort": [{"_score": "desc"}, {"seq": "asc"}], "track_scores": True,
            "track_total_hits": True, "_source": ["passage_id", "text"]})
        took.append(found["took"])

    out = time_queries(run, queries, warmup)
    warm = took[-len(queries):]
    out["took_p50_ms"] = round(percentile(warm, 50), 2)
    out["took_p99_ms"] = round(percentile(warm, 99), 2)
    return out


def naive_queries(index_dir: Path, queries: list[str], warmup: list[str]) -> dict[str, float]:
    from whoosh import index
    from whoosh.qparser import OrGroup, QueryParser

    with warnings.catch_warnings():
        # Opening the index imports jieba.analyse (its schema's analyzer), which
        # reads its IDF table from a file it never closes.
        warnings.simplefilter("ignore", ResourceWarning)
        ix = index.open_dir(str(index_dir))
    searcher = ix.searcher()
    parser = QueryParser("content", ix.schema, group=OrGroup)

    def run(q: str) -> None:
        results = searcher.search(parser.parse(q), limit=10)
        for hit in results:
            hit.highlights("content")

    return time_queries(run, queries, warmup)


def tantivy_queries(index_dir: Path, queries: list[str], warmup: list[str]) -> dict[str, float]:
    import jieba
    import tantivy

    ix = tantivy.Index.open(str(index_dir))
    searcher = ix.searcher()

    def run(q: str) -> None:
        words = [w for w in jieba.cut_for_search(q) if w.strip() and any(c.isalnum() for c in w)]
        if not words:
            return
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(ix.schema, "content", w)) for w in words])
        for _, addr in searcher.search(query, 10).hits:
            searcher.doc(addr)

    return time_queries(run, queries, warmup)


SEGMENTATION = "segmentation_only"  # the ceiling's runs: jieba alone, one core
PEERS = (("naive", NAIVE_BUILD, naive_queries), ("tantivy", TANTIVY_BUILD, tantivy_queries))


# -- HTTP -----------------------------------------------------------------------------


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
                except Exception:
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
        return {"clients": clients, "requests": len(self.latencies),
                "rps": round(len(self.latencies) / self.seconds, 1),
                "p50_ms": round(percentile(self.latencies, 50), 2), "p99_ms": round(percentile(self.latencies, 99), 2),
                "errors": self.errors}


def http_compare(loads: dict[str, Callable[[int], str]], clients: int, seconds: float, slices: int = 5
                 ) -> dict[str, dict[str, float]]:
    """``clients`` threads of each kind sending requests back to back for ``seconds``, taking turns in ``slices``
    slices each: on a machine whose speed drifts (this one's varies by ±15 %),
    kinds compared as a ratio then meet the same conditions."""
    done = {name: _Load() for name in loads}
    for _ in range(slices):
        for name, url_for in loads.items():
            done[name].run(url_for, clients, seconds / slices)
    return {name: load.summary(clients) for name, load in done.items()}


def serve(index_dir: Path, port: int, workers: int = 2, env: dict[str, str] | None = None
          ) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``search-service serve`` (with ``env`` added to the environment); returns it
    and the seconds to the first answered query."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "search_service.cli", "serve", "--index", str(index_dir),
                             "--port", str(port), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}/search?q=" + urllib.parse.quote("医保卡")
    while time.perf_counter() - began < 60:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - began
        except Exception:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not start")


def worker_memory_mb(proc: subprocess.Popen[bytes], workers: int | None = None) -> dict[str, list[float]]:
    """Memory of each worker of the server ``proc`` (waiting up to 10 s until ``workers`` of them run)."""
    import psutil

    deadline = time.monotonic() + 10
    children = psutil.Process(proc.pid).children()
    while workers is not None and len(children) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
        children = psutil.Process(proc.pid).children()
    infos = [c.memory_full_info() for c in children]
    return {"worker_rss_mb": [round(m.rss / 1e6, 1) for m in infos],
            "worker_pss_mb": [round(m.pss / 1e6, 1) for m in infos],
            "worker_uss_mb": [round(m.uss / 1e6, 1) for m in infos],
            # RSS less file-backed pages (the mapped index, libraries): the worker's
            # heap, part of it still shared copy-on-write with the master.
            "worker_anon_mb": [round((m.rss - m.shared) / 1e6, 1) for m in infos]}


# -- the whole run ----------------------------------------------------------------------


def our_variants(opensearch_urls: str | None = None) -> list[tuple[str, str, dict[str, str]]]:
    """(name, segmenter, environment) of each configuration of ours to measure: jieba, rjieba
    when installed, and the OpenSearch engine on the cluster at ``opensearch_urls``."""
    variants: list[tuple[str, str, dict[str, str]]] = [("ours", "jieba", {})]
    if importlib.util.find_spec("rjieba") is not None:
        variants.append(("ours+rjieba", "rjieba", {}))
    if opensearch_urls:
        variants.append(("ours on opensearch", "jieba", {"SEARCH_ENGINE": "opensearch",
                                                          "SEARCH_OPENSEARCH_URLS": opensearch_urls}))
    return variants


def run_bench(sizes: list[int], query_count: int, http_seconds: float, clients: list[int], peers: bool,
              workdir: Path, eval_dir: Path = EVAL, log: Callable[[str], None] = print,
              peer_sizes: list[int] | None = None, repeat: int = 1, opensearch_urls: str | None = None
              ) -> dict[str, Any]:
    texts = base_passages(eval_dir)
    drawn = eval_queries(eval_dir, 2 * query_count)
    report_files = hostile_files_bench(workdir)
    log("hostile files: " + ", ".join(f"{k} {v['seconds']} s" for k, v in report_files.items()))
    dev = dev_corpora_bench(workdir, eval_dir, repeat=max(3, repeat))
    log(f"dev corpora: ours {dev['ours']['seconds']:.1f} s, naive {dev['naive']['seconds']:.1f} s, "
        f"incremental {dev['incremental']['seconds']:.1f} s")
    queries, warmup = drawn[:query_count], drawn[query_count:]
    variants = our_variants(opensearch_urls)
    run_id = os.urandom(3).hex()
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "sizes": {}, "hostile_files": report_files,
                              "dev_corpora": dev}
    for size in sizes:
        row: dict[str, Any] = {"index": {}, "queries": {}, "server": {}}
        corpus_dir = workdir / f"corpus-{size}"
        corpus_dir.mkdir(parents=True, exist_ok=True)
        nbytes = write_corpus(corpus_dir / "bench.jsonl", texts, size)
        row["corpus_mb"] = round(nbytes / 1e6, 2)
        # Every build of this size, the ceiling's and the peers' included, in rounds
        # (see interleaved_runs); each engine's index is its last round's.
        jobs: dict[str, Job] = {}
        envs: dict[str, dict[str, str]] = {}
        for name, engine, base_env in variants:
            ours_dir = workdir / f"{name.replace(' ', '-')}-{size}"
            envs[name] = {**base_env, "SEARCH_OPENSEARCH_PREFIX": f"bench-{run_id}-{size}"} if base_env else {}
            jobs[name] = (OURS_BUILD, (str(corpus_dir), str(ours_dir), engine), ours_dir, envs[name])
        jobs[SEGMENTATION] = (SEGMENT_ONLY, (str(corpus_dir / "bench.jsonl"),), None, None)
        with_peers = peers and (peer_sizes is None or size in peer_sizes)
        if with_peers:
            for name, code, _ in PEERS:
                peer_dir = workdir / f"{name}-{size}"
                jobs[name] = (code, (str(corpus_dir / "bench.jsonl"), str(peer_dir)), peer_dir, None)
        runs = interleaved_runs(repeat, jobs)
        seg = median_of(runs[SEGMENTATION])
        row["segmentation_only"] = {**seg, "passages_per_s": round(seg["passages"] / seg["seconds"], 1)}
        for name, _, _ in variants:
            ours_dir, env = jobs[name][2], envs[name]
            build = median_of(runs[name])
            # How close to jieba alone, on as many cores as the build used.
            cores = min(os.cpu_count() or 1, max(1, build["passages"] // PARALLEL_MIN_PASSAGES))
            build.update(passages_per_s=round(build["passages"] / build["seconds"], 1),
                         mb_per_s=round(nbytes / 1e6 / build["seconds"], 3),
                         index_mb=cluster_mb(env) if env else folder_mb(ours_dir),
                         ceiling_ratio=paired_ratio(runs[name], runs[SEGMENTATION], cores),
                         ceiling_rounds=round_ratios(runs[name], runs[SEGMENTATION], cores))
            row["index"][name] = build
            log(f"{size}: {name} indexed in {build['seconds']:.1f} s")
            row["queries"][name] = ours_queries(ours_dir, queries, warmup, env)
            if env:
                row["queries"]["opensearch cluster alone"] = cluster_queries(queries, warmup, env)
            row["server"][name] = server_probe(ours_dir, queries, env)
            log(f"{size}: {name} queries p50 {row['queries'][name]['p50_ms']} ms; server {row['server'][name]}")
        if with_peers:
            for name, _, timer in PEERS:
                peer_dir = jobs[name][2]
                peer = median_of(runs[name])
                peer.update(passages_per_s=round(peer["passages"] / peer["seconds"], 1), index_mb=folder_mb(peer_dir),
                            ceiling_ratio=paired_ratio(runs[name], runs[SEGMENTATION]),  # one process
                            ceiling_rounds=round_ratios(runs[name], runs[SEGMENTATION]))
                row["index"][name] = peer
                row["queries"][name] = timer(peer_dir, queries, warmup)
                log(f"{size}: {name} indexed in {peer['seconds']:.1f} s")
        report["sizes"][str(size)] = row
    if http_seconds > 0:
        size = sorted(sizes)[len(sizes) // 2]
        report["http"] = {"passages": size, "variants": {}}
        for name, _, base_env in variants:
            env = {**base_env, "SEARCH_OPENSEARCH_PREFIX": f"bench-{run_id}-{size}"} if base_env else {}
            report["http"]["variants"][name] = http_bench(workdir / f"{name.replace(' ', '-')}-{size}", queries,
                                                          http_seconds, clients, env=env)
        report["hostile"] = hostile_bench(workdir / f"{variants[0][0]}-{size}",
                                          count=max(20, min(200, query_count)), inflate=max(50, min(2000, 2 * query_count)))
        # The queries repeat during a step (1,000 of them, thousands of requests):
        # measure the first engine again with every request ranked and highlighted.
        name = variants[0][0]
        report["http"]["variants"][f"{name}, result cache off"] = http_bench(
            workdir / f"{name}-{size}", queries, http_seconds, clients, env={"SEARCH_RESULT_CACHE_MB": "0"})
    return report


def cluster_mb(env: dict[str, str]) -> float:
    """The size of the OpenSearch version just built (primaries and replicas)."""
    from search_service.engine.opensearch.client import make_client
    from search_service.settings import Settings

    settings = Settings.from_env({**os.environ, **env})
    stats = make_client(settings).indices.stats(index=settings.opensearch_prefix, metric="store")
    return round(stats["_all"]["total"]["store"]["size_in_bytes"] / 1e6, 1)


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


def http_bench(index_dir: Path, queries: list[str], seconds: float, clients: list[int],
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """Requests/s and latency of ``/search`` (cycling through ``queries``) and of
    ``/health``, at each number of concurrent clients, on one fresh server."""
    port = free_port()
    proc, cold = serve(index_dir, port, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        encoded = [base + "/search?q=" + urllib.parse.quote(q[:256]) for q in queries]
        out: dict[str, Any] = {"cold_start_s": round(cold, 2), "search": [], "health": []}
        for n in clients:
            found = http_compare({"search": lambda i: encoded[i % len(encoded)],
                                  "health": lambda i: base + "/health"}, n, seconds)
            out["search"].append(found["search"])
            out["health"].append(found["health"])
        out.update(worker_memory_mb(proc))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- hostile files --------------------------------------------------------------------

# name -> (file name, content maker, seconds it must take at most on this machine)
_LINE = "医保卡密码忘了可以带身份证去银行重置"  # 18 characters, 54 bytes in UTF-8
HOSTILE_FILES: dict[str, tuple[str, Callable[[], str], float]] = {
    "HTML nested 20,000 deep": ("deep.html", lambda: "<html><body>" + "<div>" * 20_000
                                + "<p>深层的文字，讲医保卡密码重置。</p>" + "</div>" * 20_000 + "</body></html>", 5.0),
    "300 KB line, no punctuation": ("line.txt", lambda: _LINE * 5_500, 10.0),
    "5 MB line, no punctuation": ("long.txt", lambda: _LINE * 92_600, 60.0),
    # Above PART_BYTES: read and split in parts, its peak memory that of a part, not of the file.
    "8 MB text, one document": ("big.txt", lambda: "".join(f"第{i}条：{_LINE}。{_LINE}，{_LINE}。\n"
                                                           for i in range(43_000)), 90.0),
}


def hostile_files_bench(workdir: Path) -> dict[str, Any]:
    """Reindex time and peak RSS of each hostile file alone, against its budget."""
    out = {}
    for name, (file_name, make, budget) in HOSTILE_FILES.items():
        corpus = workdir / f"hostile-{file_name}" / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / file_name).write_text(make(), encoding="utf-8")
        run = median_run(1, OURS_BUILD, str(corpus), str(corpus.parent / "index"), "jieba")
        out[name] = {"mb": round((corpus / file_name).stat().st_size / 1e6, 2), "seconds": round(run["seconds"], 2),
                     "peak_rss_mb": run["peak_rss_mb"], "passages": run["passages"], "budget_s": budget,
                     "within_budget": run["seconds"] <= budget}
    return out


# The evaluation's two development collections, as a user's small corpus: ours against
# the naive build, and an --incremental run after 1 % of their documents changed.
DEV_CORPORA = ("drcd-dev/corpus.jsonl", "cmrc2018/corpus.jsonl")


def dev_corpora_bench(workdir: Path, eval_dir: Path = EVAL, repeat: int = 3) -> dict[str, Any]:
    corpus = workdir / "dev" / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for name in DEV_CORPORA:
        text = (eval_dir / name).read_text("utf-8")
        (corpus / name.replace("/", "-")).write_text(text, "utf-8")
        lines += [line for line in text.splitlines() if line.strip()]
    joined = workdir / "dev" / "all.jsonl"
    joined.write_text("\n".join(lines) + "\n", "utf-8")
    index = workdir / "dev" / "index"
    naive_dir = workdir / "dev" / "naive"
    builds = interleaved_runs(repeat, {"ours": (OURS_BUILD, (str(corpus), str(index), "jieba"), index, None),
                                       "naive": (NAIVE_BUILD, (str(joined), str(naive_dir)), naive_dir, None)})
    ours, naive = median_of(builds["ours"]), median_of(builds["naive"])
    # Change every 100th document, then reindex with --incremental (once per repeat,
    # each time from the same full version and the same change).
    base = workdir / "dev" / "base"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(index, base)
    originals = {p: p.read_text("utf-8") for p in corpus.iterdir()}
    changed = 0
    for path, text in originals.items():
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        for i, record in enumerate(records):
            if i % 100 == 0:
                record["text"] += "\n（本文已修订。）"
                changed += 1
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", "utf-8")
    runs = []
    for _ in range(max(1, repeat)):
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(base, index)
        runs.append(run_child(OURS_INCREMENTAL, str(corpus), str(index), "jieba"))
    runs.sort(key=lambda r: r["seconds"])
    incremental = {**runs[len(runs) // 2], "runs_seconds": [round(r["seconds"], 2) for r in runs]}
    for path, text in originals.items():
        path.write_text(text, "utf-8")
    return {"documents": len(lines), "passages": ours["passages"], "changed_documents": changed,
            "ours": ours, "naive": naive, "incremental": incremental,
            "x_naive": paired_ratio(builds["ours"], builds["naive"], rate=lambda r: 1 / r["seconds"]),
            "incremental_share_of_full": round(incremental["seconds"] / ours["seconds"], 3)}


# -- hostile clients -----------------------------------------------------------------

# Common characters: excluding them (-的 -一 ...) once made queries walk long posting lists.
COMMON = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法"
          "所民得经十三之进着等部度家电力里如水化高自二起小物现实加量都两体制机当使点从业本去把性好")


def hostile_queries(count: int, seed: int = 11) -> list[str]:
    """256-character queries as a hostile client writes them: the excluded common
    characters, many required ones, phrases of rare characters, and random mixes."""
    rng = random.Random(seed)
    rare = [chr(c) for c in range(0x20000, 0x20000 + 8192)]
    shapes = [
        lambda: "的 " + " ".join(f"-{c}" for c in COMMON[:85]),
        lambda: " ".join(f"+{c}" for c in COMMON[:85]),
        lambda: " ".join(f'"{"".join(rng.sample(rare, 6))}"' for _ in range(30)),
        lambda: "".join(rng.choice(rare) for _ in range(256)),
        lambda: " ".join(rng.choice(["+", "-", '"', ""]) + "".join(rng.sample(COMMON, rng.randint(1, 4)))
                         for _ in range(80)),
    ]
    return [shapes[i % len(shapes)]()[:256] for i in range(count)]


def hostile_bench(index_dir: Path, count: int = 200, inflate: int = 2000, env: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """On a fresh ``serve --workers 2``: the worst and p99 time of ``count`` hostile
    queries and the share over 100 ms; how long a normal request waits while four
    slow clients hold connections; worker memory before and after ``inflate``
    queries of 256 distinct rare characters each."""
    import socket

    port = free_port()
    proc, _ = serve(index_dir, port, env=env)
    base = f"http://127.0.0.1:{port}"

    def timed(path: str) -> tuple[float, int]:
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(base + path, timeout=40) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:  # no answer in time, connection refused or reset: status 0
            status = 0
        return (time.perf_counter() - began) * 1000, status

    try:
        out: dict[str, Any] = {}
        times, statuses = [], {}
        for q in hostile_queries(count):
            ms, status = timed("/search?q=" + urllib.parse.quote(q))
            times.append(ms)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        out["hostile"] = {"queries": count, "worst_ms": round(max(times), 1), "p99_ms": round(percentile(times, 99), 1),
                          "over_100_ms": round(sum(t > 100 for t in times) / count, 3), "statuses": statuses}
        slow = []
        for partial in (b"GET /search?q=%E5%8C%BB", b"GET /search?q=x HTTP/1.1\r\nHost: a\r\nX-A",
                        b"POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"q\":",
                        b"GET /health HTTP/1.1\r\nHo"):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(partial)
            slow.append(sock)
        try:
            time.sleep(0.5)
            waits = [timed("/search?q=" + urllib.parse.quote("医保卡密码"))[0] for _ in range(5)]
        finally:
            for sock in slow:
                sock.close()
        out["slow_clients"] = {"held": len(slow), "worst_normal_ms": round(max(waits), 1)}
        before = worker_memory_mb(proc, workers=2)["worker_rss_mb"]
        rng = random.Random(5)
        for i in range(inflate):
            start = 0x20000 + rng.randrange(0, 0x9000)
            timed("/search?q=" + urllib.parse.quote("".join(chr(start + k) for k in range(256))))
        out["inflation"] = {"queries": inflate, "worker_rss_mb_before": before,
                            "worker_rss_mb_after": worker_memory_mb(proc, workers=2)["worker_rss_mb"]}
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _with_rounds(build: dict[str, Any]) -> str:
    """The ratio to the ceiling, and each round's when there were several: this
    machine's noise is about the size of a target's margin."""
    ratio = build.get("ceiling_ratio", "—")
    rounds = build.get("ceiling_rounds") or []
    return f"{ratio} ({', '.join(f'{r:.2f}' for r in rounds)})" if len(rounds) > 1 else str(ratio)


def table(report: dict[str, Any]) -> str:
    lines = ["| passages | engine | index s | passages/s | × naive | × ceiling | index MB | peak MB (process RSS / all PSS) "
             "| cold p50 / p99 ms | warm p50 ms | warm p99 ms | warm p50 × naive |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size, row in report["sizes"].items():
        naive = row["index"].get("naive")
        naive_q = row["queries"].get("naive")
        for engine, build in row["index"].items():
            q = row["queries"][engine]
            ratio = f"{build['passages_per_s'] / naive['passages_per_s']:.2f}" if naive else "—"
            qratio = f"{q['p50_ms'] / naive_q['p50_ms']:.2f}" if naive_q else "—"
            lines.append(f"| {size} | {engine} | {build['seconds']:.1f} | {build['passages_per_s']:.0f} | {ratio} | "
                         f"{_with_rounds(build)} | {build['index_mb']} | {build['peak_rss_mb']} / "
                         f"{build.get('peak_tree_mb')} | {q['cold_p50_ms']} / {q['cold_p99_ms']} | "
                         f"{q['p50_ms']} | {q['p99_ms']} | {qratio} |")
        alone = row["queries"].get("opensearch cluster alone")
        if alone:
            lines.append(f"| {size} | opensearch cluster alone (took p50 / p99 {alone['took_p50_ms']} / "
                         f"{alone['took_p99_ms']} ms) | | | | | | | {alone['cold_p50_ms']} / {alone['cold_p99_ms']} | "
                         f"{alone['p50_ms']} | {alone['p99_ms']} | |")
        seg = row["segmentation_only"]
        lines.append(f"| {size} | jieba alone (1 core) | {seg['seconds']:.1f} | {seg['passages_per_s']:.0f} | | 1.00 "
                     f"| | | | | | |")
    lines += ["", "| passages | engine | cold start s | worker RSS MB | worker PSS MB | worker USS MB "
                  "| worker anonymous MB |",
              "|---|---|---|---|---|---|---|"]
    for size, row in report["sizes"].items():
        for engine, probe in row.get("server", {}).items():
            lines.append(f"| {size} | {engine} | {probe['cold_start_s']} | {probe['worker_rss_mb']} | "
                         f"{probe['worker_pss_mb']} | {probe['worker_uss_mb']} | {probe.get('worker_anon_mb', '')} |")
    if "http" in report:
        h = report["http"]
        for engine, run in h["variants"].items():
            lines += ["", f"HTTP, {engine}, {h['passages']} passages, gunicorn 2 workers (after the run: worker "
                          f"RSS {run['worker_rss_mb']}, PSS {run['worker_pss_mb']}, USS {run['worker_uss_mb']} MB)", "",
                      "| clients | /search rps | p50 ms | p99 ms | errors | /health rps | search / health |",
                      "|---|---|---|---|---|---|---|"]
            for s, hh in zip(run["search"], run["health"]):
                lines.append(f"| {s['clients']} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} | {s['errors']} | "
                             f"{hh['rps']} | {s['rps'] / hh['rps']:.2f} |")
    if report.get("dev_corpora"):
        d = report["dev_corpora"]
        lines += ["", f"The two development collections ({d['documents']} documents, {d['passages']} passages), "
                      "median of three builds each:", "",
                  "| build | seconds | peak MB (process RSS / all PSS) | × naive | share of a full build |",
                  "|---|---|---|---|---|",
                  f"| ours, full | {d['ours']['seconds']:.2f} | {d['ours']['peak_rss_mb']} / {d['ours']['peak_tree_mb']} "
                  f"| {d['x_naive']} | 1 |",
                  f"| ours, --incremental after {d['changed_documents']} documents changed | "
                  f"{d['incremental']['seconds']:.2f} | {d['incremental']['peak_rss_mb']} / "
                  f"{d['incremental']['peak_tree_mb']} | | {d['incremental_share_of_full']} |",
                  f"| naive Whoosh + jieba | {d['naive']['seconds']:.2f} | {d['naive']['peak_rss_mb']} | 1.00 | |"]
    if report.get("hostile_files"):
        lines += ["", "Hostile files, each reindexed alone:", "", "| file | MB | seconds | budget s | peak RSS MB | passages |",
                  "|---|---|---|---|---|---|"]
        for name, f in report["hostile_files"].items():
            lines.append(f"| {name} | {f['mb']} | {f['seconds']} | {f['budget_s']} | {f['peak_rss_mb']} | {f['passages']} |")
    if "hostile" in report:
        h = report["hostile"]
        hq, sc, inf = h["hostile"], h["slow_clients"], h["inflation"]
        lines += ["", f"Hostile clients: {hq['queries']} hostile 256-character queries: worst {hq['worst_ms']} ms, "
                      f"p99 {hq['p99_ms']} ms, {hq['over_100_ms']:.1%} over 100 ms, statuses {hq['statuses']}; "
                      f"a normal request with {sc['held']} slow clients holding connections: worst "
                      f"{sc['worst_normal_ms']} ms; worker RSS {inf['worker_rss_mb_before']} MB before and "
                      f"{inf['worker_rss_mb_after']} MB after {inf['queries']} queries of 256 distinct rare characters."]
    return "\n".join(lines)


def main_bench(sizes: list[int], query_count: int, http_seconds: float, clients: list[int], peers: bool,
               out: Path, keep: bool = False, eval_dir: Path = EVAL,
               peer_sizes: list[int] | None = None, repeat: int = 1, opensearch: str | None = None
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
        report = run_bench(sizes, query_count, http_seconds, clients, peers, workdir, eval_dir,
                           log=lambda m: print(m, file=sys.stderr, flush=True), peer_sizes=peer_sizes,
                           repeat=repeat, opensearch_urls=opensearch)
    finally:
        if cluster is not None:
            cluster.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report

