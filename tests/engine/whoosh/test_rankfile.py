"""A segment's ranking postings hold every text term's documents and counts, as Whoosh's postings do."""

from __future__ import annotations

import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from whoosh import index as whoosh_index
from whoosh.filedb.filestore import RamStorage

from search_service.engine.whoosh import rankfile
from search_service.engine.whoosh.codec import ArrayCodec, term_arrays
from search_service.engine.whoosh.postings import ReaderSource, rank_files
from search_service.engine.whoosh.rankfile import RankFile, RankFileWriter, open_rankfile, term_key
from search_service.engine.whoosh.schema import build_schema
from search_service.engine.whoosh.writer import BulkSegmentWriter
from search_service.fields import FIELDS
from tests.engine.whoosh.test_writer import passage_records, written

TEXT_FIELDS = {f.name for f in FIELDS}


def whoosh_written(folder, config, records):
    """The oracle: ``records`` written by Whoosh's own writer, every field in Whoosh's files."""
    return written(folder, config, records, lambda ix: ix.writer(codec=ArrayCodec()))


def assert_same_postings(ours, oracle):
    """Every text term of ``oracle``: our ranking postings hold its documents and counts, and
    no other term; a lookup finds each, through the ranker's source too; our gram and pair fields
    are in no Whoosh file. Returns the terms checked."""
    with oracle.searcher() as theirs, ours.searcher() as searcher:
        expected = {}
        for field, tbytes in theirs.reader().all_terms():
            if field in TEXT_FIELDS:
                ids, weights = term_arrays(theirs.reader()._terms, field, tbytes)
                expected[(field, tbytes)] = (ids.tolist(), weights.tolist())
        reader = searcher.reader()
        found: dict = {}
        for segment, base in reader.leaf_readers():
            ranks = open_rankfile(segment)
            assert ranks is not None and ranks.fields <= TEXT_FIELDS
            assert not {f.name for f in FIELDS if f.rank_only} & set(segment.indexed_field_names())
            for field, tbytes, ids, counts in ranks.terms(ranks.fields):
                entry = found.setdefault((field, tbytes), ([], []))
                entry[0].extend((ids.astype(np.int64) + base).tolist())
                entry[1].extend(counts.tolist())
                looked_up = ranks.postings(*term_key(field, tbytes.decode("utf-8")), base=base)
                assert looked_up[0].dtype == np.int32
                assert looked_up[0].tolist() == (ids.astype(np.int64) + base).tolist()
                assert looked_up[1].tolist() == counts.tolist()
            assert ranks.postings(*term_key("body", "没有这个词")) is None
            assert ranks.postings(*term_key("doc_id", "d1")) is None  # not a text field
        assert found == expected
        source = ReaderSource(searcher, rank_files(reader))
        for (field, tbytes), (ids, weights) in expected.items():
            got = source.term_postings(field, tbytes.decode("utf-8"))
            assert got[0].tolist() == ids and got[1].tolist() == weights
    return len(expected)


def test_every_text_term_is_found_with_whooshs_postings(tmp_path, make_settings):
    config, records = passage_records(tmp_path, make_settings, 400, seed=5)
    ix = written(tmp_path / "ours", config, records, BulkSegmentWriter)
    assert assert_same_postings(ix, whoosh_written(tmp_path / "oracle", config, records)) > 4000


def test_a_merged_segment_has_them_too(tmp_path, make_settings):
    """A merge brings each segment's ranking postings into the new one, less the deleted passages."""
    config, records = passage_records(tmp_path, make_settings, 240, seed=11)
    (tmp_path / "ours").mkdir()
    ix = whoosh_index.create_in(str(tmp_path / "ours"), build_schema(config))
    half = len(records) // 2
    for part in (records[:half], records[half:]):
        writer = BulkSegmentWriter(ix)
        for record in part:
            writer.add_document(**record)
        writer.commit(merge=False)
    assert len(ix._segments()) == 2
    assert assert_same_postings(ix, whoosh_written(tmp_path / "oracle", config, records)) > 1000
    writer = BulkSegmentWriter(ix)
    writer.delete_by_term("doc_id", "d3")
    writer.commit(optimize=True)
    assert len(ix._segments()) == 1
    kept = [r for r in records if r["doc_id"] != "d3"]
    assert len(kept) < len(records)
    assert assert_same_postings(ix, whoosh_written(tmp_path / "oracle-after", config, kept)) > 1000


def write_and_open(terms: dict[str, dict[str, tuple[list[int], list[float]]]]) -> RankFile:
    storage = RamStorage()
    writer = RankFileWriter(storage.create_file("x.rnk"))
    for field, postings in terms.items():
        names = sorted(postings)
        bounds = np.cumsum([0] + [len(postings[t][0]) for t in names])
        docs = np.array([d for t in names for d in postings[t][0]], dtype=np.int32)
        counts = np.array([c for t in names for c in postings[t][1]], dtype=np.float32)
        writer.add_terms(field, [t.encode("utf-8") for t in names], bounds, docs, counts)
    writer.close()
    return RankFile(storage.open_file("x.rnk"), storage.file_length("x.rnk"))


postings_lists = st.lists(
    st.tuples(
        st.integers(0, 3_000_000),
        st.one_of(st.integers(1, 300), st.integers(1, 70_000), st.floats(0.25, 9.0, width=32)),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda p: p[0],
).map(lambda ps: sorted(ps))
fields_terms = st.dictionaries(
    st.sampled_from(["body", "grams", "title"]),
    st.dictionaries(st.text(min_size=1, max_size=6), postings_lists, max_size=12),
    max_size=3,
)


@hsettings(max_examples=150, deadline=None)
@given(fields_terms, st.integers(0, 1000))
def test_what_is_written_is_read_back(terms, base):
    """Gaps within u2 or not, counts within u1, u2 or neither, fractional weights, any keys."""
    ranks = write_and_open(
        {f: {t: ([d for d, _ in ps], [c for _, c in ps]) for t, ps in ts.items()} for f, ts in terms.items()}
    )
    for field, postings in terms.items():
        for term, ps in postings.items():
            ids, counts = ranks.postings(*term_key(field, term), base=base)
            assert ids.tolist() == [d + base for d, _ in ps]
            assert counts.tolist() == [float(np.float32(c)) for _, c in ps]
        assert ranks.postings(*term_key(field, "\x00absent")) is None
    assert ranks.postings(*term_key("nofield", "x")) is None


@hsettings(max_examples=50, deadline=None)
@given(fields_terms)
def test_bytes_by_field_are_each_fields_records_and_the_table(terms):
    """Each field's records (head, key, ids, counts u1 or u2 or u4 as their largest needs:
    whole counts here), and the table."""
    terms = {f: {t: [(d, max(1, int(c))) for d, c in ps] for t, ps in ts.items()} for f, ts in terms.items()}
    ranks = write_and_open(
        {f: {t: ([d for d, _ in ps], [c for _, c in ps]) for t, ps in ts.items()} for f, ts in terms.items()}
    )
    sizes = ranks.bytes_by_field()
    for field, postings in terms.items():
        if not postings:
            continue
        records = 0
        for term, ps in postings.items():
            counts = [c for _, c in ps]
            width = 4 if max(counts) > 65535 else 2 if max(counts) > 255 else 1
            records += 9 + len(field.encode()) + 1 + len(term.encode()) + len(ps) * (4 + width)
        assert sizes[field] == records, field
    assert set(sizes) == {"", *(f for f, ps in terms.items() if ps)}


def test_a_term_longer_than_64_kb_is_kept():
    term = "x" * 70_000  # one token: a run of letters without a space
    ranks = write_and_open({"body": {term: ([3], [1.0]), "y": ([1, 2], [1.0, 1.0])}})
    assert ranks.postings(*term_key("body", term))[0].tolist() == [3]
    assert ranks.postings(*term_key("body", "y"))[0].tolist() == [1, 2]


def test_keys_of_the_same_hash_are_told_apart_by_their_bytes(monkeypatch):
    """Every key hashes alike: a lookup probes past the others and compares keys."""
    monkeypatch.setattr(rankfile, "zlib", types.SimpleNamespace(crc32=lambda key: 7))
    terms = {"body": {f"词{i}": ([i, i + 1], [1.0, 2.0]) for i in range(30)}}
    ranks = write_and_open(terms)
    for term, (docs, counts) in terms["body"].items():
        ids, found = ranks.postings(*term_key("body", term))
        assert ids.tolist() == docs and found.tolist() == counts
    assert ranks.postings(*term_key("body", "词30")) is None


def test_a_truncated_file_is_an_error_not_a_wrong_answer():
    storage = RamStorage()
    writer = RankFileWriter(storage.create_file("x.rnk"))
    writer.add_terms(
        "body", [b"a"], np.array([0, 3]), np.array([1, 5, 9], dtype=np.int32), np.array([1, 1, 2], dtype=np.int32)
    )
    writer.close()
    data = storage.open_file("x.rnk").get(0, storage.file_length("x.rnk"))
    whole = RankFile(types.SimpleNamespace(get=lambda at, n: data[at : at + n]), len(data))
    assert whole.postings(*term_key("body", "a"))[0].tolist() == [1, 5, 9]
    # A record cut short (the file's bytes end before what its table lists).
    cut = RankFile(
        types.SimpleNamespace(get=lambda at, n: data[at : min(at + n, 10)] if at < 10 else data[at : at + n]), len(data)
    )
    with pytest.raises(EOFError):
        cut.postings(*term_key("body", "a"))
    with pytest.raises((EOFError, ValueError)):
        RankFile(types.SimpleNamespace(get=lambda at, n: data[:-5][at : at + n]), len(data))
