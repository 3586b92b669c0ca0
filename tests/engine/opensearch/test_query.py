"""The query plan in OpenSearch's terms (no cluster needed)."""

from search_service.engine.opensearch.schema import passage_document
from search_service.engine.opensearch.version import query
from search_service.search.planner import Planner
from search_service.fields import Ranking
from search_service.text.analysis import AnalysisConfig, get_analysis
from search_service.text.synonyms import Synonyms

ANALYSIS = get_analysis(AnalysisConfig(userdict=("医保卡 2000 n",)))
PLANNER = Planner(ANALYSIS, Synonyms([["医保卡", "医疗保险卡"]]), Ranking())


def test_parts_are_weighted_terms_and_synonyms_a_dis_max():
    q = query(PLANNER.plan("医保卡"))["bool"]
    assert q["minimum_should_match"] == 1 and q["filter"] == []
    synonyms = next(part["dis_max"] for part in q["should"] if "dis_max" in part)
    assert synonyms["tie_breaker"] == 0.0
    assert [next(iter(t["term"].items())) for t in synonyms["queries"]] == [
        ("f_body", {"value": "医保卡", "boost": 1.0}), ("f_body", {"value": "医疗保险卡", "boost": 0.8})]
    assert {"term": {"f_grams": {"value": "医保", "boost": 0.5}}} in q["should"]


def test_constraints_filter_and_never_score():
    q = query(PLANNER.plan('"密码重置" -银行', docs=("a", "b"), filters=(("tags", "x"),)))["bool"]
    assert q["minimum_should_match"] == 0
    phrase, docs = q["filter"]
    assert phrase == {"bool": {"filter": [{"match_phrase": {"f_body_phrase": {"query": "密码 重置",
                                                                               "analyzer": "whitespace"}}}]}}
    assert docs["bool"]["filter"][0]["bool"]["should"] == [{"term": {"doc_id": "a"}}, {"term": {"doc_id": "b"}}]
    assert docs["bool"]["filter"][1]["bool"]["should"] == [{"term": {"filters.tags": "x"}}]
    assert "银行" in str(q["must_not"])


def test_a_passage_document_carries_the_terms_the_whoosh_engine_indexes():
    record = {"passage_id": "d#0", "doc_id": "d", "ordinal": 0, "start": 0, "end": 8, "text": "醫保卡密碼忘了",
              "title": "醫保卡", "heading": "", "source": "d.txt", "metadata": {}, "content_hash": "h",
              "filters": {"tags": ["x"]}}
    doc = passage_document(record, 7, ANALYSIS)
    assert doc["seq"] == 7 and doc["filters"] == {"tags": ["x"]} and doc["text"] == "醫保卡密碼忘了"
    assert doc["f_body"].split() == [w.text for w in ANALYSIS.words("醫保卡密碼忘了")]
    assert doc["f_body_phrase"].split() == ["医保卡", "密码", "忘"]
    assert sorted(doc["f_grams"].split()) == sorted(ANALYSIS.gram_counts("醫保卡密碼忘了").elements())
    assert doc["f_heading"] == "" and doc["f_title"].split() == ["医保", "医保卡"]
