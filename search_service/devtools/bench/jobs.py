"""The benchmark's builds, each run in a fresh interpreter of its own:
``python -m search_service.devtools.bench.jobs JOB ARG...`` prints one JSON object
(the job's figures, its peak memory). A fresh process per build makes its peak
memory (``ru_maxrss``) that build's own, and starts every engine equally cold.

Jobs: ``ours`` and ``ours-incremental`` (``search-service reindex``), ``naive``
(Whoosh with jieba's ``ChineseAnalyzer``, one process, what jieba's README gives a
user), ``tantivy`` (the tantivy bindings fed the same jieba tokens) and
``segmentation`` (jieba alone on one core: the ceiling a build is compared with).
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

Figures = dict[str, Any]


def ours(corpus: str, index: str, segmenter: str, incremental: bool = False) -> Figures:
    from search_service.ingest.reindex import build_index
    from search_service.settings import Settings

    began = time.perf_counter()
    report = build_index(
        Settings.from_env(corpus_dir=corpus, index_dir=index, segmenter=segmenter), incremental=incremental
    )
    out: Figures = {"seconds": time.perf_counter() - began, "passages": report.passages}
    if incremental:
        out.update(reanalyzed=report.reanalyzed, mode=report.mode)
    return out


def ours_incremental(corpus: str, index: str, segmenter: str) -> Figures:
    return ours(corpus, index, segmenter, incremental=True)


def _quiet_jieba() -> Any:
    warnings.simplefilter("ignore")
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _lines(path: str) -> Any:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def naive(corpus_jsonl: str, index: str) -> Figures:
    _quiet_jieba()
    from jieba.analyse import ChineseAnalyzer
    from whoosh import fields
    from whoosh import index as whoosh_index

    began = time.perf_counter()
    schema = fields.Schema(id=fields.ID(stored=True), content=fields.TEXT(stored=True, analyzer=ChineseAnalyzer()))
    writer = whoosh_index.create_in(index, schema).writer(limitmb=256)
    n = 0
    for d in _lines(corpus_jsonl):
        writer.add_document(id=d["id"], content=d["text"])
        n += 1
    writer.commit()
    return {"seconds": time.perf_counter() - began, "passages": n}


def tantivy(corpus_jsonl: str, index: str) -> Figures:
    jieba = _quiet_jieba()
    import tantivy as tv

    began = time.perf_counter()
    builder = tv.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("content", stored=True, tokenizer_name="whitespace")
    writer = tv.Index(builder.build(), path=index).writer(heap_size=256_000_000, num_threads=2)
    n, segmenting = 0, 0.0
    for d in _lines(corpus_jsonl):
        t = time.perf_counter()
        tokens = " ".join(jieba.cut_for_search(d["text"]))
        segmenting += time.perf_counter() - t
        writer.add_document(tv.Document(id=d["id"], content=tokens))
        n += 1
    writer.commit()
    writer.wait_merging_threads()
    return {"seconds": time.perf_counter() - began, "passages": n, "segment_seconds": segmenting}


def segmentation(corpus_jsonl: str) -> Figures:
    jieba = _quiet_jieba()
    jieba.initialize()
    texts = [d["text"] for d in _lines(corpus_jsonl)]
    began = time.perf_counter()
    for text in texts:
        list(jieba.cut_for_search(text))
    return {"seconds": time.perf_counter() - began, "passages": len(texts)}


JOBS: dict[str, Callable[..., Figures]] = {
    "ours": ours,
    "ours-incremental": ours_incremental,
    "naive": naive,
    "tantivy": tantivy,
    "segmentation": segmentation,
}


class TreePeak:
    """The largest memory of this process and the processes it forks (the writers),
    sampled once a second: proportional set sizes, so that pages forked processes share
    count once, not once per process (reading a process's PSS stalls it, so not more
    often; a peak shorter than a second can be missed)."""

    def __init__(self) -> None:
        self.peak = 0
        try:
            import psutil
        except ImportError:
            self.available = False
            return
        self.available = True
        threading.Thread(target=self._sample, args=(psutil,), daemon=True).start()

    @staticmethod
    def _pss(process: Any, psutil: Any) -> int:
        try:
            return int(process.memory_full_info().pss)
        except (AttributeError, psutil.AccessDenied):
            return int(process.memory_info().rss)

    def _sample(self, psutil: Any) -> None:
        me = psutil.Process()
        while True:
            try:
                total = self._pss(me, psutil) + sum(self._pss(c, psutil) for c in me.children(recursive=True))
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            time.sleep(1.0)

    def figures(self) -> Figures:
        """The largest single process (exact) and the largest sum over the tree (sampled), in MB."""
        usage = max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        )
        return {
            "peak_rss_mb": round(usage / 1024, 1),
            "peak_tree_mb": round(self.peak / 2**20, 1) if self.available else None,
        }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in JOBS:
        print(f"usage: python -m {__name__} {{{','.join(JOBS)}}} ARG...", file=sys.stderr)
        return 64
    peak = TreePeak()
    figures = JOBS[args[0]](*args[1:])
    print(json.dumps({**figures, **peak.figures()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
