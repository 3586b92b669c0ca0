"""Ranking quality on judged collections: MRR@10, R@1, R@10, R@100.

The queries go through the same code path as the API (:class:`SearchRequest`
→ :meth:`SearchService.search` with ``collapse=doc``), so a document's rank is
the rank of its best passage.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from search_service.errors import InvalidRequest
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.results import Hit
from search_service.search.service import SearchService
from search_service.settings import Settings

CUTOFFS = (1, 10, 100)
T = TypeVar("T")
# A passage is judged relevant when it is of the relevant document and this share of it,
# or of the judged span, lies within the judged span.
SPAN_OVERLAP = 0.5


@dataclass
class Metrics:
    mrr10: float
    recall: dict[str, float]

    def rounded(self, places: int = 4) -> Metrics:
        return Metrics(round(self.mrr10, places), {k: round(v, places) for k, v in self.recall.items()})

    def line(self) -> str:
        r = self.recall
        return f"MRR@10 {self.mrr10:.4f}  R@1 {r['1']:.4f}  R@10 {r['10']:.4f}  R@100 {r['100']:.4f}"


@dataclass
class EvalReport:
    queries: int
    mrr10: float
    recall: dict[str, float]
    queries_per_second: float
    index_seconds: float | None
    passages: int | None
    candidates: int = 0  # each query searched within this many documents (0: all)
    by_passage: Metrics | None = None  # judged per passage (--spans), without collapse

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        line = Metrics(self.mrr10, self.recall).line() + f"  queries {self.queries}  {self.queries_per_second:.1f} q/s"
        if self.candidates:
            line += f"  within {self.candidates} candidates"
        if self.index_seconds is not None:
            line += f"  indexed {self.passages} passages in {self.index_seconds:.1f} s"
        if self.by_passage is not None:
            line += "\nper passage: " + self.by_passage.line()
        return line


def read_jsonl(path: str | Path, what: str, row: Callable[[dict[str, Any]], T]) -> Iterator[T]:
    """``row`` of each object of a jsonl file (blank lines skipped); InvalidRequest naming
    the line of one that is not ``what``."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield row(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidRequest(f"{path}:{lineno}: not {what} ({exc})") from None


def read_queries(path: str | Path) -> list[tuple[str, str]]:
    return list(read_jsonl(path, "a query object with 'id' and 'text'", lambda r: (str(r["id"]), str(r["text"]))))


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


Span = tuple[str, int, int]  # document, start, end


def read_spans(path: str | Path) -> dict[str, list[Span]]:
    """Judgments per passage: ``query_id<TAB>doc_id<TAB>start<TAB>end``, the relevant
    [start, end) of the document's text (what ``scripts/longdocs.py`` writes)."""
    spans: dict[str, list[Span]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                qid, doc, start, end = parts[0], parts[1], int(parts[2]), int(parts[3])
            except (IndexError, ValueError):
                raise InvalidRequest(f"{path}:{lineno}: expected 'query_id<TAB>doc_id<TAB>start<TAB>end'") from None
            spans.setdefault(qid, []).append((doc, start, end))
    return spans


def within(hit: Span, judged: list[Span]) -> bool:
    """Whether a passage (its document and span) is relevant to a query judged by ``judged``."""
    doc, start, end = hit
    for jdoc, jstart, jend in judged:
        overlap = min(end, jend) - max(start, jstart)
        if jdoc == doc and overlap > 0 and overlap >= SPAN_OVERLAP * min(end - start, jend - jstart):
            return True
    return False


def metrics(first_relevant: dict[str, int | None]) -> Metrics:
    """MRR@10 and recall at each cutoff, from each judged query's first relevant rank (None: not found)."""
    if not first_relevant:
        return Metrics(0.0, {str(k): 0.0 for k in CUTOFFS})
    n = len(first_relevant)
    ranks = list(first_relevant.values())
    mrr = sum(1.0 / r for r in ranks if r is not None and r <= 10) / n
    return Metrics(mrr, {str(k): sum(1 for r in ranks if r is not None and r <= k) / n for k in CUTOFFS})


def score(rankings: dict[str, list[str]], qrels: dict[str, set[str]]) -> tuple[float, dict[str, float]]:
    """MRR@10 and recall at each cutoff over the judged queries."""
    found = {
        q: next((i for i, d in enumerate(docs, start=1) if d in qrels[q]), None)
        for q, docs in rankings.items()
        if q in qrels
    }
    m = metrics(found)
    return m.mrr10, m.recall


def candidate_lists(
    settings: Settings, query_list: list[tuple[str, str]], judgments: dict[str, set[str]], n: int
) -> dict[str, list[str]]:
    """Each judged query's ``n`` candidate documents: its relevant ones, then those plain
    BM25 (bm25s's defaults over each document's words, this analysis's segmentation)
    ranks highest for it, ties broken by the corpus's order. Deterministic."""
    import bm25s
    import numpy as np

    from search_service.ingest.corpus import CorpusReader, Document
    from search_service.ingest.reindex import analysis_config
    from search_service.text.analysis import get_analysis

    if not 1 <= n <= settings.max_filter_values:
        raise InvalidRequest(f"--candidates must be between 1 and {settings.max_filter_values} (max_filter_values)")
    analysis = get_analysis(analysis_config(settings), settings.cache_dir)
    texts: dict[str, list[str]] = {}
    for item in CorpusReader(settings.corpus_dir).items():
        if isinstance(item, Document):
            texts.setdefault(item.doc_id, []).append(item.text)
    ids = list(texts)
    retriever = bm25s.BM25()
    retriever.index([[t.text for t in analysis.words("".join(parts))] for parts in texts.values()], show_progress=False)
    out: dict[str, list[str]] = {}
    for qid, text in query_list:
        relevant = sorted(judgments.get(qid, ()))
        if not relevant:
            continue
        tokens = [t.text for t in analysis.words(text)]
        scores = retriever.get_scores(tokens) if tokens else np.zeros(len(ids))
        order = np.lexsort((np.arange(len(ids)), -scores))  # by score, then corpus order
        others = (ids[i] for i in order if ids[i] not in relevant)
        out[qid] = (relevant + [d for d, _ in zip(others, range(max(0, n - len(relevant))), strict=False)])[:n]
    return out


def evaluate(
    settings: Settings,
    corpus: str | Path,
    queries: str | Path,
    qrels: str | Path,
    *,
    index_dir: str | Path | None = None,
    run_file: str | Path | None = None,
    spans: str | Path | None = None,
    candidates: int = 0,
    service_factory: Callable[[Settings], SearchService] = SearchService,
) -> EvalReport:
    """Index ``corpus`` (into ``index_dir`` or a temporary folder), run every query, score.

    ``spans``: judge the passages too (:func:`read_spans`), from a second run of each query
    without collapse. ``candidates``: search each query within its :func:`candidate_lists`."""
    query_list = read_queries(queries)
    judgments = read_qrels(qrels)
    judged_spans = read_spans(spans) if spans else None
    with tempfile.TemporaryDirectory(prefix="search-eval-") as tmp:
        eval_settings = settings.replace(corpus_dir=str(corpus), index_dir=str(index_dir or Path(tmp) / "index"))
        within_docs = candidate_lists(eval_settings, query_list, judgments, candidates) if candidates else {}
        began = time.perf_counter()
        report = build_index(eval_settings)
        index_seconds = time.perf_counter() - began
        service = service_factory(eval_settings)

        def run(qid: str, text: str, collapse: str | None) -> list[Hit]:
            try:
                request = SearchRequest.create(
                    eval_settings,
                    q=text[: eval_settings.max_query_chars],
                    size=100,
                    collapse=collapse,
                    doc=within_docs[qid] if candidates else None,
                )
            except InvalidRequest:
                return []  # an empty query finds nothing, and counts as a miss
            return service.search(request).hits

        rankings: dict[str, list[tuple[str, float]]] = {}
        by_passage: dict[str, int | None] = {}
        began = time.perf_counter()
        for qid, text in query_list:
            if candidates and qid not in within_docs:
                continue
            rankings[qid] = [(h.doc_id, h.score) for h in run(qid, text, "doc")]
            if judged_spans is not None and qid in judged_spans:
                hits = run(qid, text, None)
                by_passage[qid] = next(
                    (h.rank for h in hits if within((h.doc_id, h.start, h.end), judged_spans[qid])), None
                )
        elapsed = time.perf_counter() - began
    if run_file:
        with open(run_file, "w", encoding="utf-8") as fh:
            for qid, ranked in rankings.items():
                for rank, (doc, s) in enumerate(ranked, start=1):
                    fh.write(f"{qid} Q0 {doc} {rank} {s:.4f} search-service\n")
    by_document = Metrics(*score({q: [d for d, _ in r] for q, r in rankings.items()}, judgments)).rounded()
    return EvalReport(
        queries=len(rankings),
        mrr10=by_document.mrr10,
        recall=by_document.recall,
        queries_per_second=round(len(rankings) / elapsed, 1) if elapsed else 0.0,
        index_seconds=round(index_seconds, 2),
        passages=report.passages,
        candidates=candidates,
        by_passage=metrics(by_passage).rounded() if judged_spans is not None else None,
    )
