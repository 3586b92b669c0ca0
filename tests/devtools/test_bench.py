"""The benchmark runs end to end on a tiny corpus: every engine, every section of the report."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from search_service.devtools.bench import measure
from search_service.devtools.bench.httpload import http_compare
from search_service.devtools.bench.report import _with_rounds, table
from search_service.devtools.bench.run import main_bench
from tests.helpers import SEED_CORPUS


def tiny_eval_dir(root):
    """The layout of ../shared/eval, filled with the bundled corpus's lines."""
    lines = [
        line
        for name in ("000_0cfe50795da03c63.txt", "001_965e0e36aae651b5.txt")
        for line in (SEED_CORPUS / name).read_text("utf-8").splitlines()
        if len(line) > 20
    ]
    for collection, queries in (("cmrc2018", ["queries.jsonl"]), ("drcd-dev", ["queries_zhs.jsonl", "queries.jsonl"])):
        folder = root / collection
        folder.mkdir(parents=True)
        (folder / "corpus.jsonl").write_text(
            "".join(
                json.dumps({"id": f"{collection}-{i}", "text": text}, ensure_ascii=False) + "\n"
                for i, text in enumerate(lines)
            ),
            encoding="utf-8",
        )
        for name in queries:
            (folder / name).write_text(
                "".join(
                    json.dumps({"id": f"q{i}", "text": q}, ensure_ascii=False) + "\n"
                    for i, q in enumerate(["医保卡密码忘了怎么办", "醫保卡被鎖", "社保卡激活"])
                ),
                encoding="utf-8",
            )
    return root


@pytest.mark.bench
def test_bench_reports_every_engine_server_and_http_step(tmp_path):
    report = main_bench([150], 6, 0.5, [1], True, tmp_path / "bench.json", eval_dir=tiny_eval_dir(tmp_path / "eval"))
    assert json.loads((tmp_path / "bench.json").read_text("utf-8")) == report
    row = report["sizes"]["150"]
    assert set(row["index"]) == {"ours", "ours+rjieba", "naive", "tantivy"}
    assert len(row["segmentation_only"]["runs_seconds"]) == 1  # as many runs as builds (--repeat)
    for engine, build in row["index"].items():
        assert build["passages_per_s"] > 0 and build["index_mb"] > 0, engine
        assert build["ceiling_ratio"] > 0 and build["peak_tree_mb"] > 0, engine
        assert len(build["ceiling_rounds"]) == 1, engine  # one a round
        assert row["queries"][engine]["p50_ms"] > 0 and row["queries"][engine]["cold_p50_ms"] > 0, engine
    for engine in ("ours", "ours+rjieba"):
        probe = row["server"][engine]
        assert 0 < probe["cold_start_s"] < 30
        assert len(probe["worker_anon_mb"]) == 2 and all(m > 0 for m in probe["worker_anon_mb"])
    assert set(report["http"]["variants"]) == {"ours", "ours+rjieba", "ours, result cache off"}
    for run in report["http"]["variants"].values():
        assert [s["errors"] for s in run["search"]] == [0] and run["search"][0]["rps"] > 0
    files = report["hostile_files"]
    assert set(files) == {
        "HTML nested 20,000 deep",
        "300 KB line, no punctuation",
        "5 MB line, no punctuation",
        "8 MB text, one document",
    }
    assert all(f["passages"] >= 1 and f["peak_rss_mb"] > 0 and f["within_budget"] for f in files.values()), files
    dev = report["dev_corpora"]
    assert dev["changed_documents"] == 2 and 0 < dev["documents"] <= dev["ours"]["passages"]
    assert dev["incremental"]["mode"] == "incremental" and dev["incremental"]["reanalyzed"] == 2
    assert dev["x_naive"] > 0 and dev["incremental_share_of_full"] > 0
    hostile = report["hostile"]
    assert hostile["hostile"]["queries"] == 20 and set(hostile["hostile"]["statuses"]) <= {"200", "400"}
    assert hostile["slow_clients"]["failed"] == 0 and hostile["slow_clients"]["worst_normal_ms"] < 1000
    assert len(hostile["inflation"]["worker_rss_mb_after"]) == 2
    parts = report["sizes"]["150"]["index"]["ours"]["bytes_per_passage"]
    assert parts["ranking postings: body"] > 0 and parts["stored: text"] > 0
    text = table(report)
    assert "| 150 | tantivy |" in text and "search / health" in text and "Hostile clients:" in text
    assert "| ranking postings: grams |" in text
    assert "| HTML nested 20,000 deep |" in text and "| ours, --incremental after 2 documents changed |" in text


def test_http_comparison_takes_turns_and_continues_each_sequence():
    arrivals: list[tuple[str, int]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            kind, _, number = self.path[1:].partition("/")
            arrivals.append((kind, int(number)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        out = http_compare({"a": lambda i: f"{base}/a/{i}", "b": lambda i: f"{base}/b/{i}"}, 2, 1.0, slices=4)
    finally:
        server.shutdown()
        server.server_close()
    for kind in "ab":
        numbers = [n for k, n in arrivals if k == kind]
        assert out[kind]["requests"] == len(numbers) > 4 and out[kind]["errors"] == 0
        assert sorted(numbers) == list(range(len(numbers)))  # one sequence through every slice
    assert [k for k, _ in itertools.groupby(k for k, _ in arrivals)] == ["a", "b"] * 4  # turns


def test_builds_run_in_rounds_and_each_ratio_is_taken_within_a_round(tmp_path, monkeypatch):
    calls: list[str] = []
    # Round 2 is a slow spell of the machine: every job takes twice as long in it.
    seconds = {"ours": [10.0, 20.0, 11.0], "alone": [20.0, 40.0, 30.0]}

    def fake_run_child(job, *args, env=None):
        calls.append(job)
        return {"seconds": seconds[job][sum(c == job for c in calls) - 1], "passages": 100}

    monkeypatch.setattr(measure, "run_child", fake_run_child)
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    runs = measure.interleaved_runs(
        3, {"ours": ("ours", ("corpus", str(out)), out, None), "alone": ("alone", ("corpus",), None, None)}
    )
    assert calls == ["ours", "alone"] * 3  # rounds, not blocks
    assert list(out.iterdir()) == []  # each run writes into an emptied folder
    assert measure.median_of(runs["ours"])["seconds"] == 11.0
    assert measure.median_of(runs["ours"])["runs_seconds"] == [10.0, 20.0, 11.0]  # round by round
    # Per round 2.0, 2.0 and 2.73: the median is 2.0, where the medians' ratio is 30 / 11 = 2.73.
    assert measure.paired_ratio(runs["ours"], runs["alone"]) == 2.0
    assert measure.paired_ratio(runs["ours"], runs["alone"], scale=2) == 1.0
    assert measure.paired_ratio(runs["alone"], runs["ours"], rate=lambda r: 1 / r["seconds"]) == 0.5
    assert measure.round_ratios(runs["ours"], runs["alone"]) == [2.0, 2.0, 2.73]  # in round order
    assert _with_rounds({"ceiling_ratio": 2.0, "ceiling_rounds": [2.0, 2.0, 2.73]}) == "2.0 (2.00, 2.00, 2.73)"
    assert _with_rounds({"ceiling_ratio": 2.0, "ceiling_rounds": [2.0]}) == "2.0"


def test_a_build_job_runs_in_its_own_process_and_an_unknown_one_is_a_usage_error(tmp_path, capsys):
    from search_service.devtools.bench import jobs

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "医保卡密码忘了怎么办"}\n', "utf-8")
    figures = measure.run_child("segmentation", str(corpus))
    assert figures["passages"] == 1 and figures["seconds"] >= 0 and figures["peak_rss_mb"] > 0
    assert jobs.main(["nope"]) == 64 and "usage:" in capsys.readouterr().err


def test_the_naive_peer_runs_up_to_200k_passages_and_tantivy_at_every_size():
    from search_service.devtools.bench.run import peers_at

    assert [name for name, _ in peers_at(200_000)] == ["naive", "tantivy"]
    assert [name for name, _ in peers_at(1_000_000)] == ["tantivy"]
