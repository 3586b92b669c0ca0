"""The benchmark's corpora and queries, made from the evaluation collections
(``../shared/eval``): passage-sized texts replicated to any size, deterministically."""

from __future__ import annotations

import json
import random
from pathlib import Path

from search_service.ingest.corpus import CorpusReader
from search_service.ingest.passages import PassageSplitter

EVAL = Path(__file__).resolve().parents[4] / "shared" / "eval"  # ../shared/eval beside the project


# -- the corpus --------------------------------------------------------------


def base_passages(eval_dir: Path) -> list[str]:
    """Passage-sized texts from the evaluation collections (both scripts)."""
    texts: list[str] = []
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
    queries: list[str] = []
    for name in ("cmrc2018/queries.jsonl", "drcd-dev/queries_zhs.jsonl", "drcd-dev/queries.jsonl"):
        with open(eval_dir / name, encoding="utf-8") as fh:
            queries.extend(json.loads(line)["text"] for line in fh if line.strip())
    queries = [q for q in queries if q.strip()]
    random.Random(42).shuffle(queries)
    return queries[:count]
