"""BulkSegmentWriter writes what Whoosh's SegmentWriter writes; parallel builds rank like serial ones."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from whoosh import formats
from whoosh import index as whoosh_index

from search_service.engine.whoosh.codec import ArrayCodec
from search_service.engine.whoosh.columns import _stable_order, encode_positions
from search_service.engine.whoosh.rankfile import open_rankfile
from search_service.engine.whoosh.schema import build_schema, whoosh_fields
from search_service.engine.whoosh.segfiles import BulkCodec
from search_service.engine.whoosh.writer import BulkSegmentWriter
from search_service.fields import FIELDS
from search_service.ingest import reindex as index_module
from search_service.ingest.prepare import prepare
from search_service.ingest.reindex import _records, analysis_config, build_index
from search_service.ingest.spool import Spool
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from search_service.text.analysis import get_analysis
from tests.helpers import SEED_CORPUS, jsonl, write_corpus

SENTENCES = [
    line
    for line in (SEED_CORPUS / "000_0cfe50795da03c63.txt").read_text("utf-8").splitlines()
    + (SEED_CORPUS / "001_965e0e36aae651b5.txt").read_text("utf-8").splitlines()
    if len(line) > 8
]


def corpus_records(count: int, seed: int = 7) -> str:
    """``count`` documents mixing the seeds' lines: terms from 1 to ``count`` postings,
    so inlined lists and multi-block lists (over 128 postings) both occur."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        lines = rng.sample(SENTENCES, 3)
        records.append(
            {
                "id": f"d{i}",
                "title": f"医保卡问答 第{i % 17}篇",
                "text": "\n".join(lines) + f"\n医保卡编号{i}。",
                "category": ["faq", "law"][i % 2],
                "tags": ["x", f"t{i % 5}"],
            }
        )
    return jsonl(*records)


# The fields our writer keeps in the ranking postings only (grams, pairs).
GRAM_FIELDS = tuple(f.name for f in FIELDS if f.rank_only)


def gram_postings(reader) -> dict:
    """Each gram field term's (document, weight) postings: from a segment's ranking postings
    (where our writer puts them, and only there), else from Whoosh's files."""
    found: dict = {}
    for segment, base in reader.leaf_readers():
        ranks = open_rankfile(segment)
        for field in GRAM_FIELDS:
            if ranks is not None and field in ranks.fields:
                items = ((tbytes, ids.tolist(), counts.tolist()) for _, tbytes, ids, counts in ranks.terms({field}))
            elif ranks is None and field in segment.indexed_field_names():
                items = (
                    (tbytes, *map(list, zip(*segment.postings(field, tbytes).items_as("weight"))))
                    for tbytes in segment.lexicon(field)
                )
            else:
                continue
            for tbytes, ids, weights in items:
                found.setdefault((field, tbytes), []).extend((d + base, float(w)) for d, w in zip(ids, weights))
    return {key: ("postings", sorted(postings)) for key, postings in found.items()}


def segment_contents(ix, grams_as_postings: bool = False):
    """Every term's statistics and postings, every document's stored fields and lengths.
    ``grams_as_postings``: the gram fields' terms as their postings only (:func:`gram_postings`):
    our writer keeps no statistics for them, only their ranking postings."""
    with ix.searcher() as searcher:
        reader = searcher.reader()
        terms = gram_postings(reader) if grams_as_postings else {}
        for fieldname, tbytes in reader.all_terms():
            if grams_as_postings and fieldname in GRAM_FIELDS:
                continue
            info = reader.term_info(fieldname, tbytes)
            m = reader.postings(fieldname, tbytes)
            postings = []
            while m.is_active():
                postings.append((m.id(), m.weight(), m.value()))
                m.next()
            terms[(fieldname, tbytes)] = (
                (
                    info.weight(),
                    info.doc_frequency(),
                    info.min_length(),
                    info.max_length(),
                    info.max_weight(),
                    info.min_id(),
                    info.max_id(),
                ),
                postings,
            )
        stored = [reader.stored_fields(d) for d in range(reader.doc_count_all())]
        lengths = {
            (d, f): reader.doc_field_length(d, f)
            for d in range(reader.doc_count_all())
            for f in (f.name for f in FIELDS)
        }
        columns = {
            name: [reader.column_reader(name)[d] for d in range(reader.doc_count_all())]
            for name, field in ix.schema.items()
            if field.column_type
        }
    return terms, stored, lengths, columns


# Blocks of 128 postings, so that the 400-passage corpus has multi-block lists.
WRITERS = (
    ("whoosh", lambda ix: ix.writer(codec=ArrayCodec(blocklimit=128))),
    ("bulk", lambda ix: BulkSegmentWriter(ix, codec=BulkCodec(blocklimit=128))),
)


def passage_records(tmp_path, make_settings, count, seed):
    """The analysis and every passage's fields for a generated corpus, as reindex makes them."""
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(count, seed=seed)})
    settings = make_settings(corpus=corpus)
    config = get_analysis(analysis_config(settings))
    with Spool(tmp_path) as spool:
        prepared = prepare(settings, spool)
        records = [whoosh_fields(record) for record in _records(prepared.entries, prepared, config)]
    return config, records


def written(folder, config, records, make_writer):
    """A new index in ``folder`` holding ``records``, written by ``make_writer(ix)`` and committed."""
    folder.mkdir()
    ix = whoosh_index.create_in(str(folder), build_schema(config))
    writer = make_writer(ix)
    for record in records:
        writer.add_document(**record)
    writer.commit()
    return ix


def test_bulk_writer_writes_the_same_segment_as_whoosh(tmp_path, make_settings):
    config, records = passage_records(tmp_path, make_settings, 400, seed=7)
    built = [
        segment_contents(written(tmp_path / name, config, records, make_writer), grams_as_postings=True)
        for name, make_writer in WRITERS
    ]
    (terms_a, stored_a, lengths_a, columns_a), (terms_b, stored_b, lengths_b, columns_b) = built
    assert max(len(p) for _, p in terms_a.values()) > 300  # multi-block lists are covered
    assert sum(1 for _, p in terms_a.values() if len(p) < 8) > 1000  # and inlined ones
    assert sum(1 for f, _ in terms_a if f in GRAM_FIELDS) > 1000  # and gram terms
    assert any(f.startswith("meta_") for f, _ in terms_a)
    assert terms_b.keys() == terms_a.keys()
    for key in terms_a:
        assert terms_b[key] == terms_a[key], key
    assert stored_b == stored_a and lengths_b == lengths_a and columns_b == columns_a


def test_a_parallel_build_ranks_exactly_like_a_serial_one(tmp_path, make_settings, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(300, seed=3)})
    results = []
    for workers in (1, 2):
        monkeypatch.setattr(index_module, "PARALLEL_MIN_PASSAGES", 50)
        settings = make_settings(corpus=corpus, workers=workers).replace(index_dir=str(tmp_path / f"ix{workers}"))
        report = build_index(settings)
        assert report.passages >= 300
        ix = whoosh_index.open_dir(str(next((tmp_path / f"ix{workers}" / "versions").iterdir())))
        assert len(ix._segments()) == workers  # the parallel build really wrote two segments
        service = SearchService(settings)
        run = []
        for q in ("医保卡密码忘了怎么办", "醫保卡被鎖", "银行 解锁", "编号123", '"重新设置密码"'):
            r = service.search(SearchRequest.create(settings, q=q, size=20))
            run.append((r.total, [(h.passage_id, h.score, h.highlight) for h in r.hits]))
        r = service.search(SearchRequest.create(settings, q="医保卡", size=50, collapse="doc"))
        run.append((r.total, [h.passage_id for h in r.hits]))
        results.append(run)
    assert results[0] == results[1]


def ranking_run(settings):
    service = SearchService(settings)
    run = []
    for q in ("医保卡密码忘了怎么办", "醫保卡被鎖", "银行 解锁", "编号123", '"重新设置密码"', "-医保卡 密码"):
        r = service.search(SearchRequest.create(settings, q=q, size=30))
        run.append((r.total, [(h.passage_id, h.score, h.highlight) for h in r.hits]))
    r = service.search(SearchRequest.create(settings, q="医保卡", size=50, collapse="doc"))
    run.append((r.total, [h.passage_id for h in r.hits]))
    run.append([p.passage_id for p in service.document("d7").passages])
    return run


@pytest.mark.parametrize("workers", [1, 2])
def test_a_writer_over_its_memory_budget_starts_a_new_segment_and_ranks_the_same(
    tmp_path, make_settings, monkeypatch, workers
):
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(900, seed=13)})
    monkeypatch.setattr(index_module, "PARALLEL_MIN_PASSAGES", 50)
    runs, segments = [], []
    for budget in (256, 0):  # MB; 0: a new segment every 200 passages
        settings = make_settings(corpus=corpus, workers=workers, writer_memory_mb=budget).replace(
            index_dir=str(tmp_path / f"ix{budget}")
        )
        report = build_index(settings)
        ix = whoosh_index.open_dir(str(tmp_path / f"ix{budget}" / "versions" / report.version))
        segments.append(len(ix._segments()))
        runs.append(ranking_run(settings))
    assert segments[0] == workers
    assert segments[1] >= 900 // 200  # the budget really cut the shares into segments
    assert runs[1] == runs[0]


def test_parallel_writers_that_finish_far_apart_never_share_temporary_files(tmp_path, make_settings, monkeypatch):
    """The first share's passages are short, the second's long: its writer is still
    assembling its compound file when the first one finishes and cleans up."""
    short = [{"id": f"s{i}", "text": "医保卡密码。"} for i in range(400)]
    long_ = [{"id": f"l{i}", "text": "。".join(random.Random(i).sample(SENTENCES, 12))} for i in range(400)]
    corpus = write_corpus(tmp_path / "corpus", {"a.jsonl": jsonl(*short), "b.jsonl": jsonl(*long_)})
    monkeypatch.setattr(index_module, "PARALLEL_MIN_PASSAGES", 50)
    settings = make_settings(corpus=corpus, workers=2)
    for _ in range(3):
        report = build_index(settings)
        assert report.switched and report.passages >= 800
    version = next(p for p in (tmp_path / "index" / "versions").iterdir() if p.name == report.version)
    assert not [p for p in version.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


@pytest.mark.parametrize("failing_batch", [0, 1])
def test_a_failing_writer_process_fails_the_build_and_keeps_the_old_version(
    tmp_path, make_settings, monkeypatch, failing_batch
):
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(120, seed=5)})
    settings = make_settings(corpus=corpus, workers=2)
    first = build_index(settings)
    monkeypatch.setattr(index_module, "PARALLEL_MIN_PASSAGES", 20)
    original = BulkSegmentWriter.add_document
    calls = {"n": 0}

    def explode(self, **fields):
        calls["n"] += 1
        if fields["passage_id"].startswith(f"d{60 * failing_batch + 30}#"):
            raise OSError(28, "No space left on device")
        return original(self, **fields)

    monkeypatch.setattr(BulkSegmentWriter, "add_document", explode)
    from search_service.errors import BuildError

    with pytest.raises(BuildError, match="No space left"):
        build_index(settings)
    service = SearchService(settings)
    assert service.current().name == first.version
    assert service.search(SearchRequest.create(settings, q="医保卡")).total > 0


def test_bulk_writer_merges_existing_segments_as_whoosh_does(tmp_path, make_settings):
    config, records = passage_records(tmp_path, make_settings, 240, seed=11)
    half = len(records) // 2
    built = []
    for name, make_writer in WRITERS:
        folder = tmp_path / name
        folder.mkdir()
        ix = whoosh_index.create_in(str(folder), build_schema(config))
        with ix.writer(codec=ArrayCodec()) as first:  # an existing segment, written by Whoosh
            for record in records[:half]:
                first.add_document(**record)
        writer = make_writer(ix)
        writer.delete_by_term("doc_id", "d3")
        for record in records[half:]:
            writer.add_document(**record)
        writer.commit(optimize=True)  # the old segment's postings are merged into the new one
        assert len(ix._segments()) == 1
        built.append(segment_contents(ix, grams_as_postings=True))
    assert built[1] == built[0]


def test_term_table_hash_tables_are_whooshs_byte_for_byte(tmp_path):
    """The bulk field writer writes the term table's hash tables in one piece per
    bucket; the file is the one Whoosh's own writer makes, and reads back."""
    import hashlib as _hashlib

    from whoosh.filedb import filetables
    from whoosh.filedb.filestore import FileStorage

    from search_service.engine.whoosh.segfiles import _write_hashes

    keys = sorted({_hashlib.sha1(str(i).encode()).digest()[: 1 + i % 7] for i in range(5000)})
    storage = FileStorage(str(tmp_path))
    files = {}
    for name in ("whoosh", "bulk"):
        writer = filetables.OrderedHashWriter(storage.create_file(name))
        if name == "bulk":
            writer._write_hashes = lambda w=writer: _write_hashes(w)
        for key in keys:
            writer.add(key, key[::-1])
        writer.close()
        files[name] = (tmp_path / name).read_bytes()
    assert files["bulk"] == files["whoosh"]
    reader = filetables.OrderedHashReader(storage.open_file("bulk"), len(files["bulk"]))
    try:
        assert all(reader[key] == key[::-1] for key in keys[::97])
    finally:
        reader.close()


@given(st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=6).map(sorted))
def test_encoded_positions_are_whooshs_byte_for_byte(positions):
    assert encode_positions(positions) == formats.Positions().encode(positions)


@given(st.lists(st.integers(min_value=0, max_value=2**62), max_size=300), st.integers(min_value=1, max_value=40))
def test_postings_are_grouped_by_key_in_document_order_whichever_sort_is_used(keys, distinct):
    # Few distinct keys (many postings a key), small keys (one sort of key and place
    # together) and keys too wide for that (NumPy's stable sort): the same order.
    for column in (
        np.array(keys, dtype=np.int64),
        np.array(keys, dtype=np.int64) % distinct,
        np.array(keys, dtype=np.int64) % distinct + (1 << 61),
    ):
        order = _stable_order(column)
        assert order.dtype == np.int32
        assert order.tolist() == np.argsort(column, kind="stable").tolist()


def test_a_sortable_column_is_written_as_whoosh_writes_it(tmp_path):
    """The service's schema has no column field now, but the bulk writer keeps
    Whoosh's column path for any schema: the column reads back the same."""
    from whoosh import fields as wf

    schema = wf.Schema(key=wf.ID(stored=True), rank=wf.NUMERIC(int, bits=32, stored=True, sortable=True))
    values = {}
    for name, make_writer in WRITERS:
        folder = tmp_path / name
        folder.mkdir()
        ix = whoosh_index.create_in(str(folder), schema)
        writer = make_writer(ix)
        for i in range(300):
            writer.add_document(key=f"k{i}", rank=(i * 7919) % 1000)
        writer.commit()
        with ix.searcher() as searcher:
            values[name] = [searcher.reader().column_reader("rank")[d] for d in range(300)]
    assert values["bulk"] == values["whoosh"] == [(i * 7919) % 1000 for i in range(300)]
