"""The BM25F ranker over Whoosh's postings gives Whoosh's own BM25F scores, over whole posting lists at once."""

from __future__ import annotations

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh import scoring

from search_service.engine.whoosh.layout import IndexRoot
from search_service.engine.whoosh.postings import ReaderSource, field_lengths, rank_files
from search_service.engine.whoosh.version import term_scorer
from search_service.fields import Ranking
from search_service.ingest.reindex import build_index
from search_service.search.service import SearchService
from tests.helpers import SEED_CORPUS, open_version_index, write_corpus

FIELDS = ("body", "grams", "title", "title_grams", "heading", "heading_grams")


def whoosh_scores(searcher, field, term, avg_lengths, ranking):
    """Whoosh's own BM25F scorer, with the manifest's average length, posting by posting."""
    scorer = scoring.BM25F(B=ranking.b, K1=ranking.k1).scorer(searcher, field, term)
    if avg_lengths.get(field):
        scorer.avgfl = avg_lengths[field]
    m = searcher.postings(field, term)
    out = {}
    while m.is_active():
        out[m.id()] = scorer.score(m)
        m.next()
    return out


@pytest.fixture(scope="module")
def seed_version(tmp_path_factory):
    import shutil

    from search_service.settings import Settings

    root = tmp_path_factory.mktemp("score")
    shutil.copytree(SEED_CORPUS, root / "corpus")
    settings = Settings.from_env(corpus_dir=str(root / "corpus"), index_dir=str(root / "index"))
    build_index(settings)
    path = IndexRoot(settings.index_dir).current_dir()
    return whoosh_index.open_dir(str(path)), IndexRoot(settings.index_dir).manifest(path)


def assert_whooshs_scores(ours, theirs, avg: dict[str, float], fields) -> dict[str, int]:
    """Every term of ``fields`` in ``theirs`` (Whoosh's files): our ranker over ``ours`` (the
    same passages, read through their ranking postings) gives Whoosh's BM25F scores."""
    ranking = Ranking()
    with ours.searcher() as searcher, theirs.searcher() as oracle:
        reader = searcher.reader()
        assert reader.doc_count_all() == oracle.reader().doc_count_all()
        scorer = term_scorer(reader, avg, ranking, 10_000_000)
        source = ReaderSource(searcher, rank_files(reader))
        checked: dict[str, int] = {}
        for field, tbytes in oracle.reader().all_terms():
            if field not in fields:
                continue
            term = tbytes.decode("utf-8")
            expected = whoosh_scores(oracle, field, term, avg, ranking)
            got = scorer.postings(source, field, term)
            assert got.df == oracle.reader().doc_frequency(field, term)
            assert list(got.ids) == sorted(expected)
            np.testing.assert_allclose(got.scores, [expected[d] for d in got.ids], rtol=1e-12)
            checked[field] = checked.get(field, 0) + 1
        assert scorer.postings(source, "body", "不存在的词").df == 0
    return checked


def test_every_score_of_every_term_equals_whoosh_bm25f(seed_version):
    ix, manifest = seed_version
    checked = assert_whooshs_scores(ix, ix, manifest["avg_field_length"], ("body", "title", "heading"))
    assert sum(checked.values()) > 500


def test_every_gram_score_equals_whoosh_bm25f_over_whooshs_own_files(tmp_path, make_settings):
    """Our writer keeps the gram fields in the ranking postings only: Whoosh's scorer reads
    the same passages written by Whoosh's own writer."""
    from search_service.engine.whoosh.codec import ArrayCodec
    from search_service.engine.whoosh.writer import BulkSegmentWriter
    from tests.engine.whoosh.test_writer import passage_records, written

    config, records = passage_records(tmp_path, make_settings, 150, seed=13)
    ours = written(tmp_path / "ours", config, records, BulkSegmentWriter)
    theirs = written(tmp_path / "theirs", config, records, lambda ix: ix.writer(codec=ArrayCodec()))
    checked = assert_whooshs_scores(ours, theirs, {}, FIELDS)
    assert checked["grams"] > 1000 and checked["title_grams"] > 10 and checked["body"] > 300


def test_field_lengths_are_whooshs(seed_version):
    ix, _ = seed_version
    with ix.searcher() as searcher:
        reader = searcher.reader()
        for field in FIELDS:
            expected = [reader.doc_field_length(d, field, 0) or 0 for d in range(reader.doc_count_all())]
            assert list(field_lengths(reader, field)) == expected


def test_deleted_passages_count_neither_in_df_nor_in_n_so_scores_are_those_of_a_fresh_build(tmp_path, make_settings):
    """Whoosh keeps deleted passages in its statistics until a merge; this ranker does not,
    so a version holding deletions (an incremental reindex) scores like one built anew."""
    docs = {
        "a.txt": "医保卡密码忘了怎么办\n" + "带上身份证和医保卡到银行重置密码。" * 3,
        "b.txt": "医保卡被锁了\n到社保中心解锁医保卡。",
        "c.txt": "社保卡激活\n持身份证到银行激活社保卡。",
    }
    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", docs))
    build_index(settings)
    ix = whoosh_index.open_dir(str(IndexRoot(settings.index_dir).current_dir()))
    writer = ix.writer()
    writer.delete_by_term("doc_id", "b")
    writer.commit(merge=False)
    fresh = make_settings(corpus=write_corpus(tmp_path / "fresh", {k: v for k, v in docs.items() if k != "b.txt"}))
    fresh = fresh.replace(index_dir=str(tmp_path / "fresh-index"))
    build_index(fresh)
    fresh_ix = whoosh_index.open_dir(str(IndexRoot(fresh.index_dir).current_dir()))
    with ix.searcher() as searcher, fresh_ix.searcher() as fresh_searcher:
        reader = searcher.reader()
        assert reader.has_deletions()
        avg = dict.fromkeys(Ranking().weights(), 10.0)  # a version's are its manifest's, computed over live passages
        got = term_scorer(reader, avg, Ranking(), 1_000_000).postings(ReaderSource(searcher), "body", "医保卡")
        want = term_scorer(fresh_searcher.reader(), avg, Ranking(), 1_000_000).postings(
            ReaderSource(fresh_searcher), "body", "医保卡"
        )
        assert got.df == want.df == 1 and list(got.ids) == list(want.ids) == [0]  # b matches nothing
        assert list(got.scores) == list(want.scores)
        assert term_scorer(reader, avg, Ranking(), 1).live_count == fresh_searcher.doc_count_all() == 2


def test_synonym_groups_count_their_best_spelling_once(seed_version):
    ix, manifest = seed_version
    with ix.searcher() as searcher:
        reader = searcher.reader()
        scorer = term_scorer(reader, manifest["avg_field_length"], Ranking(), 1_000_000)
        a, b = (
            scorer.postings(ReaderSource(searcher), "body", "医保卡"),
            scorer.postings(ReaderSource(searcher), "body", "密码"),
        )
        best = scorer.best_of(ReaderSource(searcher), [("body", "医保卡", 1.0), ("body", "密码", 0.8)])
        expected = {}
        for ids, scores in ((a.ids, a.scores), (b.ids, b.scores * 0.8)):
            for d, s in zip(ids, scores):
                expected[d] = max(expected.get(d, 0.0), s)
        assert list(best.ids) == sorted(expected)
        assert list(best.scores) == [expected[d] for d in best.ids]
        assert best.df == max(a.df, b.df)


def test_the_posting_cache_stays_within_its_budget(seed_version):
    ix, manifest = seed_version
    with ix.searcher() as searcher:
        reader = searcher.reader()
        scorer = term_scorer(reader, manifest["avg_field_length"], Ranking(), 3_000)
        for field, tbytes in list(reader.all_terms())[:2000]:
            if field in FIELDS:
                scorer.postings(ReaderSource(searcher), field, tbytes.decode("utf-8"))
                assert scorer.cache_info()["bytes"] <= 3_000
        assert scorer.cache_info()["terms"] > 0


def test_search_service_uses_the_configured_cache_budget(make_settings):
    settings = make_settings(corpus=SEED_CORPUS, posting_cache_mb=7)
    build_index(settings)
    service = SearchService(settings)
    assert service.current().index.cache_info()["limit"] == 7_000_000


def test_multi_block_posting_lists_decode_exactly(tmp_path, make_settings, monkeypatch):
    from search_service.engine.whoosh.codec import ArrayCodec
    from tests.engine.whoosh.test_writer import corpus_records

    # 64-posting blocks (the default is 512), so that 400 passages make lists of several blocks.
    monkeypatch.setattr(ArrayCodec.__init__, "__defaults__", (64, 8))
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(400)})
    settings = make_settings(corpus=corpus)
    build_index(settings)
    path = IndexRoot(settings.index_dir).current_dir()
    ix = open_version_index(path)  # as served: postings read with pread
    avg = IndexRoot(settings.index_dir).manifest(path)["avg_field_length"]
    ranking = Ranking()
    with ix.searcher() as searcher:
        reader = searcher.reader()
        scorer = term_scorer(reader, avg, Ranking(), 10_000_000)
        longest = 0
        for field, tbytes in reader.all_terms():
            if field in ("body", "grams") and reader.doc_frequency(field, tbytes) > 20:
                term = tbytes.decode("utf-8")
                expected = whoosh_scores(searcher, field, term, avg, ranking)
                got = scorer.postings(ReaderSource(searcher), field, term)
                assert list(got.ids) == sorted(expected)
                np.testing.assert_allclose(got.scores, [expected[d] for d in got.ids], rtol=1e-12)
                longest = max(longest, len(got.ids))
        assert longest > 3 * 64  # several blocks
