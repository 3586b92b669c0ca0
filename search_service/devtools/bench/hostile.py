"""Hostile input: files that once took minutes or gigabytes to index, and clients
that send hostile queries, hold connections or inflate a worker's memory."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_service.devtools.bench.httpload import serve
from search_service.devtools.bench.measure import median_run, percentile, worker_memory_mb
from search_service.devtools.ports import free_port

# name -> (file name, content maker, seconds it must take at most on this machine)
_LINE = "医保卡密码忘了可以带身份证去银行重置"  # 18 characters, 54 bytes in UTF-8
HOSTILE_FILES: dict[str, tuple[str, Callable[[], str], float]] = {
    "HTML nested 20,000 deep": (
        "deep.html",
        lambda: (
            "<html><body>"
            + "<div>" * 20_000
            + "<p>深层的文字，讲医保卡密码重置。</p>"
            + "</div>" * 20_000
            + "</body></html>"
        ),
        5.0,
    ),
    "300 KB line, no punctuation": ("line.txt", lambda: _LINE * 5_500, 10.0),
    "5 MB line, no punctuation": ("long.txt", lambda: _LINE * 92_600, 60.0),
    # Above PART_BYTES: read and split in parts, its peak memory that of a part, not of the file.
    "8 MB text, one document": (
        "big.txt",
        lambda: "".join(f"第{i}条：{_LINE}。{_LINE}，{_LINE}。\n" for i in range(43_000)),
        90.0,
    ),
}


def hostile_files_bench(workdir: Path) -> dict[str, Any]:
    """Reindex time and peak RSS of each hostile file alone, against its budget."""
    out = {}
    for name, (file_name, make, budget) in HOSTILE_FILES.items():
        corpus = workdir / f"hostile-{file_name}" / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / file_name).write_text(make(), encoding="utf-8")
        run = median_run(1, "ours", str(corpus), str(corpus.parent / "index"), "jieba")
        out[name] = {
            "mb": round((corpus / file_name).stat().st_size / 1e6, 2),
            "seconds": round(run["seconds"], 2),
            "peak_rss_mb": run["peak_rss_mb"],
            "passages": run["passages"],
            "budget_s": budget,
            "within_budget": run["seconds"] <= budget,
        }
    return out


# Common characters: excluding them (-的 -一 ...) once made queries walk long posting lists.
COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法"
    "所民得经十三之进着等部度家电力里如水化高自二起小物现实加量都两体制机当使点从业本去把性好"
)


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
        lambda: " ".join(
            rng.choice(["+", "-", '"', ""]) + "".join(rng.sample(COMMON, rng.randint(1, 4))) for _ in range(80)
        ),
    ]
    return [shapes[i % len(shapes)]()[:256] for i in range(count)]


def hostile_bench(
    index_dir: Path, count: int = 200, inflate: int = 2000, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """On a fresh ``serve --workers 2``: the worst and p99 time of ``count`` hostile
    queries and the share over 100 ms; how long normal requests wait while silent,
    trickling and half-sent connections are held; worker memory before and after ``inflate``
    queries of 256 distinct rare characters each."""
    port = free_port()
    proc, _ = serve(index_dir, port, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        return {
            "hostile": _hostile_queries(base, count),
            "slow_clients": _slow_clients(base, port),
            "inflation": _inflation(base, proc, inflate),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _timed(base: str, path: str) -> tuple[float, int]:
    """Milliseconds to the answer of ``path``, and its status (0: none in time, refused or reset)."""
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(base + path, timeout=40) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0
    return (time.perf_counter() - began) * 1000, status


def _hostile_queries(base: str, count: int) -> dict[str, Any]:
    times: list[float] = []
    statuses: dict[str, int] = {}
    for q in hostile_queries(count):
        ms, status = _timed(base, "/search?q=" + urllib.parse.quote(q))
        times.append(ms)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "queries": count,
        "worst_ms": round(max(times), 1),
        "p99_ms": round(percentile(times, 99), 1),
        "over_100_ms": round(sum(t > 100 for t in times) / count, 3),
        "statuses": statuses,
    }


def _slow_clients(base: str, port: int, silent: int = 200, trickling: int = 50, requests: int = 100) -> dict[str, Any]:
    """Normal requests (p99, worst, failures) while ``silent`` connections send nothing,
    ``trickling`` ones send a header line a second, and four hold half-sent requests."""
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(silent)]
    slow = []
    for partial in (
        b"GET /search?q=%E5%8C%BB",
        b"GET /search?q=x HTTP/1.1\r\nHost: a\r\nX-A",
        b'POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"q":',
        b"GET /health HTTP/1.1\r\nHo",
        *[b"GET /search?q=x HTTP/1.1\r\nHost: a\r\n"] * trickling,
    ):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(partial)
        slow.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for sock in slow[4:]:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        time.sleep(0.5)
        answers = [
            _timed(base, f"/search?page={i % 5 + 1}&q=" + urllib.parse.quote("医保卡密码")) for i in range(requests)
        ]
    finally:
        stop.set()
        feeder.join()
        for sock in [*held, *slow]:
            sock.close()
    waits = [ms for ms, _ in answers]
    return {
        "silent": silent,
        "trickling": trickling,
        "half_sent": 4,
        "p99_normal_ms": round(percentile(waits, 99), 1),
        "worst_normal_ms": round(max(waits), 1),
        "failed": sum(status != 200 for _, status in answers),
    }


# Ordinary questions, for the warm latency before and after a flood of rare characters.
NORMAL_QUERIES = ("医保卡密码", "中国历史", "公司成立", "北京大学", "音乐作品", "足球比赛", "城市人口", "电影导演")


def _warm_p50(base: str, pages: range) -> float:
    """Median milliseconds of the normal queries, each once per page of ``pages`` (pages the
    result cache has not seen: the postings are what is measured)."""
    times = [
        _timed(base, f"/search?page={page}&q=" + urllib.parse.quote(q))[0] for page in pages for q in NORMAL_QUERIES
    ]
    return round(sorted(times)[len(times) // 2], 2)


def _inflation(base: str, proc: subprocess.Popen[bytes], inflate: int) -> dict[str, Any]:
    """Worker memory, and the normal queries' warm median, before and after ``inflate``
    queries of 256 distinct rare characters (absent terms must neither fill the posting
    cache nor evict what it holds)."""
    _warm_p50(base, range(11, 14))  # the postings in the cache
    before = worker_memory_mb(proc, workers=2)["worker_rss_mb"]
    p50_before = _warm_p50(base, range(1, 6))
    rng = random.Random(5)
    for _ in range(inflate):
        start = 0x20000 + rng.randrange(0, 0x9000)
        _timed(base, "/search?q=" + urllib.parse.quote("".join(chr(start + k) for k in range(256))))
    return {
        "queries": inflate,
        "worker_rss_mb_before": before,
        "worker_rss_mb_after": worker_memory_mb(proc, workers=2)["worker_rss_mb"],
        "warm_p50_ms_before": p50_before,
        "warm_p50_ms_after": _warm_p50(base, range(6, 11)),
    }
