"""evaluate's judging per passage and its candidate lists (devtools/evaluate.py)."""

import pytest

from search_service.cli import EXIT_USAGE
from search_service.cli import main as cli_main
from search_service.devtools.evaluate import candidate_lists, metrics, read_spans, within
from search_service.errors import InvalidRequest
from tests.helpers import jsonl, write_corpus


def test_a_passage_is_relevant_when_half_of_it_or_of_the_span_is_in_the_span():
    judged = [("d", 100, 200)]
    assert within(("d", 120, 180), judged)  # inside
    assert within(("d", 150, 260), judged)  # half of the passage
    assert within(("d", 0, 400), judged)  # the whole span
    assert not within(("d", 180, 300), judged)  # a fifth of the passage, a fifth of the span
    assert not within(("e", 120, 180), judged)  # another document
    assert not within(("d", 200, 250), judged)  # touching is not overlapping


def test_metrics_from_first_relevant_ranks():
    m = metrics({"a": 1, "b": 2, "c": None, "d": 11})
    assert round(m.mrr10, 4) == round(1.5 / 4, 4)
    assert m.recall == {"1": 0.25, "10": 0.5, "100": 0.75}


def test_a_bad_span_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "spans.tsv"
    path.write_text("q\td\t1\t5\nq\td\tx\t5\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=r"spans.tsv:2"):
        read_spans(path)


def test_candidates_are_the_relevant_documents_then_bm25s_best_in_a_fixed_order(make_settings, tmp_path):
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "c.jsonl": jsonl(
                {"id": "gold", "text": "天气预报说明天下雨。"},
                {"id": "a", "text": "医保卡密码忘了怎么办？医保卡密码可以重置。"},
                {"id": "c", "text": "护照办理流程。"},
                {"id": "b", "text": "医保卡可以在药店使用。"},
                {"id": "d", "text": "医保卡可以在银行使用。"},
            )
        },
    )
    settings = make_settings(corpus)
    queries = [("q", "医保卡密码"), ("unjudged", "医保卡")]
    found = candidate_lists(settings, queries, {"q": {"gold"}}, 3)
    assert found == {"q": ["gold", "a", "b"]}  # b and d tie: b comes first in the corpus
    assert candidate_lists(settings, queries, {"q": {"gold"}}, 3) == found
    assert candidate_lists(settings, queries, {"q": {"gold"}}, 1) == {"q": ["gold"]}
    with pytest.raises(InvalidRequest, match="--candidates"):
        candidate_lists(settings, queries, {"q": {"gold"}}, settings.max_filter_values + 1)


def test_too_many_candidates_is_a_usage_error(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"c.jsonl": jsonl({"id": "d", "text": "正文。"})})
    (tmp_path / "q.jsonl").write_text(jsonl({"id": "q", "text": "正文"}), encoding="utf-8")
    (tmp_path / "qrels.tsv").write_text("q\td\t1\n", encoding="utf-8")
    args = ["evaluate", "--corpus", str(corpus), "--queries", str(tmp_path / "q.jsonl")]
    args += ["--qrels", str(tmp_path / "qrels.tsv"), "--candidates", "1000", "--index", str(tmp_path / "ix")]
    assert cli_main(args) == EXIT_USAGE
    assert "--candidates must be between 1 and" in capsys.readouterr().err
