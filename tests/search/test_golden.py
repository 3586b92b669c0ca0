"""Golden ranking test on a tiny judged corpus (tests/golden), through `evaluate`."""

import json
from pathlib import Path

import pytest

from search_service.cli import main as cli_main
from search_service.devtools.evaluate import read_qrels, score
from search_service.settings import Settings
from tests.helpers import engine_env, on_engine

GOLDEN = Path(__file__).parent / "golden"
EXPECTED_TOP = {
    "q01": "yibao-mima",
    "q02": "yibao-mima",
    "q03": "yibao-suoka",
    "q04": "yibao-suoka",
    "q05": "shebao-jihuo",
    "q06": "shebao-jihuo",
    "q07": "gongjijin",
    "q08": "gongjijin",
    "q09": "huzhao",
    "q10": "huzhao",
    "q11": "jiazhao",
    "q12": "jiazhao",
    "q13": "geshui",
    "q14": "geshui",
    "q15": "chusheng",
    "q16": "juzhuzheng",
    "q17": "shiye",
    "q18": "jiehun",
    "q19": "hukou",
    "q20": "hukou",
}


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory, engine, request):
    """The golden queries' rankings, through `search-service evaluate`, on each engine."""
    tmp = tmp_path_factory.mktemp("golden")
    run = tmp / "run.trec"
    settings = on_engine(Settings.from_env(), engine, request)
    with pytest.MonkeyPatch.context() as env:
        for name, value in engine_env(settings).items():
            env.setenv(name, value)
        assert (
            cli_main(
                [
                    "evaluate",
                    "--corpus",
                    str(GOLDEN / "corpus.jsonl"),
                    "--queries",
                    str(GOLDEN / "queries.jsonl"),
                    "--qrels",
                    str(GOLDEN / "qrels.tsv"),
                    "--index",
                    str(tmp / "index"),
                    "--run",
                    str(run),
                    "--json",
                ]
            )
            == 0
        )
    rankings: dict[str, list[str]] = {}
    for line in run.read_text().splitlines():
        qid, _, doc, _rank, _, tag = line.split()
        rankings.setdefault(qid, []).append(doc)
        assert tag == "search-service"
    return rankings


def test_exact_top_results_in_both_scripts(golden_run):
    assert {q: docs[0] for q, docs in golden_run.items()} == EXPECTED_TOP
    # collapse=doc: each document at most once per ranking
    assert all(len(docs) == len(set(docs)) for docs in golden_run.values())


def test_metrics_to_fixed_precision(golden_run, capsys):
    mrr, recall = score(golden_run, read_qrels(GOLDEN / "qrels.tsv"))
    assert (round(mrr, 4), recall) == (1.0, {"1": 1.0, "10": 1.0, "100": 1.0})


def test_metric_arithmetic():
    rankings = {"a": ["x", "rel"], "b": ["rel"], "c": ["x"] * 10 + ["rel"], "d": []}
    qrels = {q: {"rel"} for q in "abcd"}
    mrr, recall = score(rankings, qrels)
    assert round(mrr, 4) == round((0.5 + 1.0) / 4, 4)
    assert recall == {"1": 0.25, "10": 0.5, "100": 0.75}


@pytest.fixture(scope="module")
def golden_long(tmp_path_factory):
    """The golden corpus in its long-document form (``search-service longdocs``): narrow
    lines and short pages, so that page breaks fall inside every paragraph."""
    from search_service.devtools.longdocs import build_long_collection

    out = tmp_path_factory.mktemp("golden-long")
    build_long_collection(GOLDEN / "corpus.jsonl", GOLDEN / "qrels.tsv", out, line_chars=16, page_lines=3)
    return out


@pytest.mark.parametrize("candidates", [0, 3])
def test_long_documents_judged_per_document_and_per_passage(golden_long, candidates, engine, request, capsys):
    """The long-document rows of the evaluate table, on the golden corpus: every query's
    document first, and its passage first, within all documents and within 3 candidates."""
    settings = on_engine(Settings.from_env(), engine, request)
    args = ["--corpus", str(golden_long / "corpus"), "--queries", str(GOLDEN / "queries.jsonl")]
    args += ["--qrels", str(golden_long / "qrels.tsv"), "--spans", str(golden_long / "passages.tsv")]
    with pytest.MonkeyPatch.context() as env:
        for name, value in engine_env(settings).items():
            env.setenv(name, value)
        capsys.readouterr()
        assert cli_main(["evaluate", *args, "--candidates", str(candidates), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["candidates"] == candidates and report["queries"] == 20
    assert (report["mrr10"], report["recall"]) == (1.0, {"1": 1.0, "10": 1.0, "100": 1.0})
    assert (report["by_passage"]["mrr10"], report["by_passage"]["recall"]["1"]) == (1.0, 1.0)
