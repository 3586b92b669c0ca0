"""The evaluation's two development collections as a user's small corpus: our build
against the naive one, and ``--incremental`` after 1 % of the documents changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from search_service.devtools.bench.corpus import EVAL
from search_service.devtools.bench.measure import interleaved_runs, median_of, paired_ratio, run_child

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
    builds = interleaved_runs(
        repeat,
        {
            "ours": ("ours", (str(corpus), str(index), "jieba"), index, None),
            "naive": ("naive", (str(joined), str(naive_dir)), naive_dir, None),
        },
    )
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
        runs.append(run_child("ours-incremental", str(corpus), str(index), "jieba"))
    runs.sort(key=lambda r: r["seconds"])
    incremental = {**runs[len(runs) // 2], "runs_seconds": [round(r["seconds"], 2) for r in runs]}
    for path, text in originals.items():
        path.write_text(text, "utf-8")
    return {
        "documents": len(lines),
        "passages": ours["passages"],
        "changed_documents": changed,
        "ours": ours,
        "naive": naive,
        "incremental": incremental,
        "x_naive": paired_ratio(builds["ours"], builds["naive"], rate=lambda r: 1 / r["seconds"]),
        "incremental_share_of_full": round(incremental["seconds"] / ours["seconds"], 3),
    }
