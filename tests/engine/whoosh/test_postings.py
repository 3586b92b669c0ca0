"""Constraints decided on posting arrays match what Whoosh's own matchers match."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.engine import plan
from search_service.engine.whoosh.layout import IndexRoot
from search_service.engine.whoosh.postings import ReaderSource, rank_files, whoosh_query
from search_service.engine.whoosh.schema import build_schema
from search_service.engine.whoosh.store import open_index
from tests.engine.whoosh.test_writer import WRITERS, passage_records, written
from tests.helpers import open_version_index, settings_factory

TERMS = (
    [plan.HasTerm("body", w) for w in ("医保卡", "密码", "银行", "解锁", "社保卡", "不存在")]
    + [plan.HasTerm("grams", g) for g in ("医保", "保卡", "密", "锁", "卡")]
    + [
        plan.InDocument("d1"),
        plan.InDocument("d2"),
        plan.InDocument("none"),
        plan.HasMetadata("tags", "x"),
        plan.HasMetadata("tags", "t1"),
        plan.HasPhrase("body", ("医保卡", "密码")),
        plan.HasPhrase("body", ("密码", "重置")),
    ]
)
constraints = st.recursive(
    st.sampled_from(TERMS),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4).map(lambda xs: plan.AllOf(tuple(xs))),
        st.lists(inner, min_size=1, max_size=4).map(lambda xs: plan.AnyOf(tuple(xs))),
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The same passages written by Whoosh's own writer, every field in Whoosh's files (the
    oracle), and by ours, whose gram fields are only in the ranking postings."""
    tmp_path = tmp_path_factory.mktemp("twins")
    config, records = passage_records(tmp_path, settings_factory(tmp_path), 80, seed=3)
    for name, make_writer in WRITERS:
        written(tmp_path / name, config, records, make_writer)
    return {name: open_index(tmp_path / name, build_schema(config)) for name, _ in WRITERS}  # read as served


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(constraints)
def test_array_matching_equals_whooshs_matchers(twins, c):
    with twins["whoosh"].searcher() as oracle, twins["bulk"].searcher() as searcher:
        expected = sorted(oracle.docs_for_query(whoosh_query(c)))
        assert list(ReaderSource(oracle).matching(c)) == expected, str(c)  # Whoosh's files alone
        # Ours: text fields' terms from the ranking postings (the gram fields' only postings).
        assert list(ReaderSource(searcher, rank_files(searcher.reader())).matching(c)) == expected, str(c)


def test_many_excluded_words_cost_array_operations_not_postings_walked(twins, monkeypatch):
    """85 excluded common characters: no Whoosh matcher is built for any of them."""
    words = (
        "一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
        "十三之进着等部度家电力里如水化高自二起小物现实加量都两体制机当使点从业本去把性好"
    )[:85]
    c = plan.AnyOf(tuple(plan.HasTerm("grams", ch) for ch in words))
    with twins["bulk"].searcher() as searcher, twins["whoosh"].searcher() as oracle:
        built = []
        original = searcher.docs_for_query
        monkeypatch.setattr(searcher, "docs_for_query", lambda q, *a, **k: built.append(q) or original(q, *a, **k))
        found = ReaderSource(searcher, rank_files(searcher.reader())).matching(c)
        assert built == [] and len(found) > 0
        assert np.array_equal(found, sorted(oracle.docs_for_query(whoosh_query(c))))


def test_document_groups_are_stored_with_the_version_and_match_the_doc_id_postings(
    tmp_path, make_settings, monkeypatch
):
    from search_service.engine.whoosh.postings import document_groups
    from search_service.ingest import reindex as reindex_module
    from search_service.ingest.reindex import build_index
    from tests.engine.whoosh.test_writer import corpus_records
    from tests.helpers import write_corpus

    monkeypatch.setattr(reindex_module, "PARALLEL_MIN_PASSAGES", 50)
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(150, seed=9)})
    settings = make_settings(corpus=corpus, workers=2)
    build_index(settings)
    path = IndexRoot(settings.index_dir).current_dir()
    stored = np.load(path / "groups.npy")
    ix = open_version_index(path)
    with ix.searcher() as searcher:
        reader = searcher.reader()
        assert len(list(reader.leaf_readers())) == 2  # two segments
        assert np.array_equal(stored, document_groups(reader)[0])
        assert np.array_equal(np.load(path / "order.npy"), np.arange(len(stored)))  # built anew: in corpus order
        # what --incremental compares, written a record at a time, in corpus order
        documents = json.loads((path / "documents.json").read_text("utf-8"))
        assert list(documents) == [json.loads(line)["id"] for line in corpus_records(150, seed=9).splitlines()]
        assert sum(d["passages"] for d in documents.values()) == len(stored)
        assert all(set(d) == {"hash", "source", "passages"} and d["source"] == "docs.jsonl" for d in documents.values())
        # the same partition as walking every doc_id posting list in Python
        doc_of = {}
        for segment, base in reader.leaf_readers():
            for doc_id in segment.lexicon("doc_id"):
                for d in segment.postings("doc_id", doc_id).all_ids():
                    doc_of[d + base] = doc_id
        assert len(doc_of) == len(stored)
        pairs = {(int(stored[d]), doc_of[d]) for d in doc_of}
        assert len(pairs) == len({g for g, _ in pairs}) == len({doc for _, doc in pairs})


@pytest.mark.parametrize("items", [[], [("医保卡", {"b": 1, "a": [2]})], [('a\n"b', {}), ("c", {"x": None})]])
def test_a_json_object_written_an_item_at_a_time_reads_back(tmp_path, items):
    from search_service.engine.whoosh.layout import write_json_items

    write_json_items(tmp_path / "t.json", iter(items))
    assert json.loads((tmp_path / "t.json").read_text("utf-8")) == dict(items)
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
