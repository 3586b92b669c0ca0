"""Ranking quality on judged collections: MRR@10, R@1, R@10, R@100.

The queries go through the same code path as the API (:class:`SearchRequest`
→ :meth:`SearchService.search` with ``collapse=doc``), so a document's rank is
the rank of its best passage.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from search_service.errors import InvalidRequest
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from search_service.settings import Settings

CUTOFFS = (1, 10, 100)


@dataclass
class EvalReport:
    queries: int
    mrr10: float
    recall: dict[str, float]
    queries_per_second: float
    index_seconds: float | None
    passages: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        r = self.recall
        line = (
            f"MRR@10 {self.mrr10:.4f}  R@1 {r['1']:.4f}  R@10 {r['10']:.4f}  R@100 {r['100']:.4f}  "
            f"queries {self.queries}  {self.queries_per_second:.1f} q/s"
        )
        if self.index_seconds is not None:
            line += f"  indexed {self.passages} passages in {self.index_seconds:.1f} s"
        return line


def read_queries(path: str | Path) -> list[tuple[str, str]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                out.append((str(record["id"]), str(record["text"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidRequest(f"{path}:{lineno}: not a query object with 'id' and 'text' ({exc})") from None
    return out


def read_qrels(path: str | Path) -> dict[str, set[str]]:
    qrels: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise InvalidRequest(f"{path}:{lineno}: expected 'query_id doc_id [relevance]'")
            if len(parts) >= 3 and parts[-1] in ("0", "-1"):
                continue
            qid, doc = (parts[0], parts[1]) if len(parts) < 4 else (parts[0], parts[2])  # TREC: qid 0 doc rel
            qrels.setdefault(qid, set()).add(doc)
    return qrels


def score(rankings: dict[str, list[str]], qrels: dict[str, set[str]]) -> tuple[float, dict[str, float]]:
    """MRR@10 and recall at each cutoff over the judged queries."""
    judged = [q for q in rankings if q in qrels]
    if not judged:
        return 0.0, {str(k): 0.0 for k in CUTOFFS}
    mrr = 0.0
    hits = dict.fromkeys(CUTOFFS, 0)
    for qid in judged:
        relevant = qrels[qid]
        rank = next((i for i, d in enumerate(rankings[qid], start=1) if d in relevant), None)
        if rank is not None and rank <= 10:
            mrr += 1.0 / rank
        for k in CUTOFFS:
            if rank is not None and rank <= k:
                hits[k] += 1
    n = len(judged)
    return mrr / n, {str(k): hits[k] / n for k in CUTOFFS}


def evaluate(
    settings: Settings,
    corpus: str | Path,
    queries: str | Path,
    qrels: str | Path,
    *,
    index_dir: str | Path | None = None,
    run_file: str | Path | None = None,
    service_factory: Callable[[Settings], SearchService] = SearchService,
) -> EvalReport:
    """Index ``corpus`` (into ``index_dir`` or a temporary folder), run every query, score."""
    query_list = read_queries(queries)
    judgments = read_qrels(qrels)
    with tempfile.TemporaryDirectory(prefix="search-eval-") as tmp:
        eval_settings = settings.replace(corpus_dir=str(corpus), index_dir=str(index_dir or Path(tmp) / "index"))
        began = time.perf_counter()
        report = build_index(eval_settings)
        index_seconds = time.perf_counter() - began
        service = service_factory(eval_settings)
        rankings: dict[str, list[tuple[str, float]]] = {}
        began = time.perf_counter()
        for qid, text in query_list:
            try:
                request = SearchRequest.create(
                    eval_settings, q=text[: eval_settings.max_query_chars], size=100, collapse="doc"
                )
            except InvalidRequest:
                rankings[qid] = []  # an empty query finds nothing, and counts as a miss
                continue
            result = service.search(request)
            rankings[qid] = [(h.doc_id, h.score) for h in result.hits]
        elapsed = time.perf_counter() - began
    if run_file:
        with open(run_file, "w", encoding="utf-8") as fh:
            for qid, ranked in rankings.items():
                for rank, (doc, s) in enumerate(ranked, start=1):
                    fh.write(f"{qid} Q0 {doc} {rank} {s:.4f} search-service\n")
    mrr, recall = score({q: [d for d, _ in r] for q, r in rankings.items()}, judgments)
    return EvalReport(
        queries=len(query_list),
        mrr10=round(mrr, 4),
        recall={k: round(v, 4) for k, v in recall.items()},
        queries_per_second=round(len(query_list) / elapsed, 1) if elapsed else 0.0,
        index_seconds=round(index_seconds, 2),
        passages=report.passages,
    )
