"""Query latency in process, cold and warm: ours (every query ranked and highlighted),
the OpenSearch cluster's own share, and the peers on their own indexes."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import cast

from search_service.devtools.bench.measure import percentile, time_queries


def ours_queries(
    index_dir: Path, queries: list[str], warmup: list[str], env: dict[str, str] | None = None
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
    from search_service.engine.opensearch.version import OpenSearchVersion, query
    from search_service.search.service import SearchService
    from search_service.settings import Settings

    settings = Settings.from_env({**os.environ, **env})
    service = SearchService(settings)
    version = service.current()
    index = cast(OpenSearchVersion, version.index)
    plans = {q: service.build_query(version, q[:256]) for q in queries + warmup}
    took: list[float] = []

    def run(q: str) -> None:
        plan = plans[q]
        if not plan.parts and plan.must is None:
            return
        found = index.client.search(
            index=index.index,
            search_type="dfs_query_then_fetch",
            body={
                "query": query(plan),
                "size": 10,
                "sort": [{"_score": "desc"}, {"seq": "asc"}],
                "track_scores": True,
                "track_total_hits": True,
                "_source": ["passage_id", "text"],
            },
        )
        took.append(found["took"])

    out = time_queries(run, queries, warmup)
    warm = took[-len(queries) :]
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
            [(tantivy.Occur.Should, tantivy.Query.term_query(ix.schema, "content", w)) for w in words]
        )
        for _, addr in searcher.search(query, 10).hits:
            searcher.doc(addr)

    return time_queries(run, queries, warmup)


# A peer: its build job (devtools/bench/jobs.py) and how its queries are timed.
PEERS: tuple[tuple[str, Callable[[Path, list[str], list[str]], dict[str, float]]], ...] = (
    ("naive", naive_queries),
    ("tantivy", tantivy_queries),
)
