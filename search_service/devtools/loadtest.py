"""A bounded load test: clients query a live server while reindex switches versions.

Loopback only; every loop stops by time. Each answer names the index version
that served it, so afterwards every hit is checked against that version: a
passage id that does not exist there is a *wrong answer*.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from search_service.devtools.bench.httpload import serve
from search_service.devtools.bench.measure import percentile
from search_service.devtools.ports import free_port
from search_service.engine import open_engine
from search_service.engine.base import Engine, IndexVersion
from search_service.errors import IndexUnavailable
from search_service.ingest.reindex import build_index
from search_service.settings import Settings

QUERIES = [
    "医保卡被锁了怎么解锁",
    "醫保卡密碼忘了怎麼辦",
    "12333",
    "锁",
    "社保卡激活",
    "密码 -银行",
    '"社会保障卡"',
    "医保卡每个月返多少钱",
    "解鎖",
    "身份证",
]


def run_load(corpus: Path, seconds: float, clients: int, switches: int, workers: int = 2) -> dict[str, Any]:
    """Serve a copy of ``corpus``, load it for ``seconds`` and reindex ``switches`` times meanwhile."""
    work = Path(tempfile.mkdtemp(prefix="search-load-"))
    try:
        shutil.copytree(corpus, work / "corpus")
        # Keep every version, so that each answer can be checked against its own.
        settings = Settings.from_env(
            corpus_dir=str(work / "corpus"), index_dir=str(work / "index"), keep_versions=switches + 2
        )
        build_index(settings)
        port = free_port()
        proc, _ = serve(Path(settings.index_dir), port, workers)
        load = _Clients(f"http://127.0.0.1:{port}/search?size=10&q=", clients, seconds)
        try:
            load.start()
            for k in range(switches):
                time.sleep(seconds / (switches + 1))
                (work / "corpus" / f"load-{k}.txt").write_text(
                    f"负载测试文档{k}\n医保卡解锁测试第{k}版：持身份证到社保局办理。", encoding="utf-8"
                )
                build_index(settings, incremental=True)
            load.join()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        latencies, errors, answers = load.latencies, load.errors, load.answers
        wrong = check_answers(open_engine(settings), answers)
        versions = sorted({v for v, _ in answers})
        return {
            "clients": clients,
            "seconds": seconds,
            "workers": workers,
            "switches": switches,
            "requests": len(latencies),
            "errors": len(errors),
            "error_samples": errors[:5],
            "wrong_answers": wrong,
            "versions_served": len(versions),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Clients:
    """``clients`` threads sending the queries back to back until ``seconds`` have passed:
    each answer's version and hits, its latency, or its error."""

    def __init__(self, base: str, clients: int, seconds: float) -> None:
        self.base, self.clients = base, clients
        self.deadline = time.monotonic() + seconds
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.answers: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(clients)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self) -> None:
        for t in self._threads:
            t.join()

    def _client(self, n: int) -> None:
        i = n
        mine: list[float] = []
        while time.monotonic() < self.deadline:
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(self.base + urllib.parse.quote(QUERIES[i % len(QUERIES)]), timeout=10) as r:
                    body = json.loads(r.read())
                with self._lock:
                    self.answers.append((body["version"], [h["passage_id"] for h in body["hits"]]))
            except Exception as exc:  # noqa: BLE001  (any failure is an error to report)
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            mine.append((time.perf_counter() - began) * 1000)
            i += self.clients
        with self._lock:
            self.latencies.extend(mine)


def check_answers(engine: Engine, answers: list[tuple[str, list[str]]]) -> int:
    """Hits whose passage id does not exist in the version that served them."""
    opened: dict[str, IndexVersion | None] = {}
    wrong = 0
    for version, ids in answers:
        if version not in opened:
            try:
                opened[version] = engine.open(version)
            except IndexUnavailable:  # removed since, or never complete
                opened[version] = None
        index = opened[version]
        wrong += sum(1 for pid in ids if index is None or index.passage(pid) is None)
    return wrong
