"""ArrayCodec stores what Whoosh's codec stores, and reads it back faster."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from whoosh import fields
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.filedb.filestore import RamStorage
from whoosh.system import pack_uint

from search_service.engine.whoosh.codec import (
    _ENTRY_GUESS,
    STORED_FIELDS,
    ArrayCodec,
    ArrayLeafMatcher,
    term_arrays,
    term_entry,
)
from search_service.engine.whoosh.columns import encode_positions
from search_service.engine.whoosh.fixes import InliningCodec
from search_service.engine.whoosh.schema import build_schema
from search_service.engine.whoosh.store import open_index
from tests.engine.whoosh.test_writer import passage_records, segment_contents
from tests.helpers import settings_factory


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The same 400 passages written by Whoosh's writer with Whoosh's codec and with ours."""
    tmp_path = tmp_path_factory.mktemp("codec")
    config, records = passage_records(tmp_path, settings_factory(tmp_path), 400, seed=11)
    indexes = {}
    # Small blocks, so that 400 passages make lists of many blocks.
    for name, codec in (("whoosh", InliningCodec(blocklimit=64)), ("array", ArrayCodec(blocklimit=64))):
        folder = tmp_path / name
        folder.mkdir()
        ix = whoosh_index.create_in(str(folder), build_schema(config))
        with ix.writer(codec=codec) as writer:
            for record in records:
                writer.add_document(**record)
        indexes[name] = ix
    return indexes


def test_same_statistics_postings_weights_and_values_as_whoosh_codec(built):
    ours, theirs = segment_contents(built["array"]), segment_contents(built["whoosh"])
    terms = theirs[0]
    assert max(len(p) for _, p in terms.values()) > 5 * 64  # several blocks per list
    assert any(w != 1.0 for _, p in terms.values() for _, w, _ in p)  # weights are stored
    assert ours == theirs


def test_term_arrays_read_every_posting_of_every_block(built):
    with built["array"].searcher() as searcher:
        reader = searcher.reader()
        terms = reader._terms
        kinds = set()
        for fieldname, tbytes in reader.all_terms():
            expected = list(reader.postings(fieldname, tbytes).items_as("weight"))
            ids, weights = term_arrays(terms, fieldname, tbytes)
            assert ids.dtype == np.uint32 and weights.dtype == np.float32
            assert list(zip(ids.tolist(), weights.tolist())) == [(i, pytest.approx(w)) for i, w in expected]
            kinds.add("inlined" if len(ids) < 8 else "one block" if len(ids) <= 64 else "blocks")
        assert kinds == {"inlined", "one block", "blocks"}
        assert term_arrays(terms, "body", "没有这个词".encode()) is None


def test_term_entry_finds_what_whooshs_hash_table_finds(built):
    """Every key of a segment's term table (read with pread, as served), values
    longer than the first read's guess included; absent keys are None."""
    ix = open_index(built["array"].storage.folder, built["array"].schema)
    with ix.searcher() as searcher:
        table = searcher.reader()._terms._tindex
        items = list(table.items())
        assert any(len(value) > _ENTRY_GUESS for _, value in items)
        for key, value in items:
            assert term_entry(table, key) == value
        for key, _ in items[:500]:
            assert term_entry(table, key + b"\x00") is None and term_entry(table, key[:-1] + b"\xff") is None


def test_stored_fields_are_plain_pickles(built):
    """What a hit shows is read without zlib: the column holds each passage's text as it is."""
    with built["array"].searcher() as searcher:
        reader = searcher.reader()
        column = reader._perdoc._cached_reader("_stored", STORED_FIELDS)
        raw = column._dbfile.get(column._basepos, column._length)
        texts = [reader.stored_fields(d)["text"] for d in range(reader.doc_count_all())]
        assert len(texts) > 100 and all(t.encode("utf-8") in raw for t in texts)


@hsettings(max_examples=40, deadline=None)
@given(st.data())
def test_phrases_and_boolean_queries_match_as_with_whoosh_codec(built, data):
    with built["whoosh"].searcher() as reference:
        words = sorted({t.decode() for f, t in reference.reader().all_terms() if f == "body"})
    picked = data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=3))
    queries = [
        wq.Phrase("body", picked),
        wq.And([wq.Term("body", w) for w in picked]),
        wq.Or([wq.Term("body", w) for w in picked]),
    ]
    for q in queries:
        found = []
        for name in ("whoosh", "array"):
            with built[name].searcher() as searcher:
                found.append(sorted(searcher.docs_for_query(q)))
        assert found[0] == found[1], q


def test_merging_whoosh_codec_segments_into_array_segments():
    """An index written with Whoosh's codec (an older version) upgrades on its next merge."""
    schema = fields.Schema(id=fields.ID(stored=True, unique=True), body=fields.TEXT(phrase=True), tag=fields.KEYWORD)
    ix = RamStorage().create_index(schema)
    with ix.writer(codec=InliningCodec()) as w:
        for i in range(1500):
            w.add_document(id=str(i), body=f"alpha beta gamma{i % 7} alpha", tag=f"t{i % 3}")
    w = ix.writer(codec=ArrayCodec())
    w.delete_by_term("id", "0")
    w.add_document(id="new", body="alpha delta", tag="t9")
    w.commit(optimize=True)
    with ix.searcher() as s:
        assert isinstance(s.reader().postings("body", "alpha"), ArrayLeafMatcher)
        ids, weights = term_arrays(s.reader()._terms, "body", b"alpha")
        assert len(ids) == 1500 and set(weights.tolist()) == {2.0, 1.0}
        assert len(s.search(wq.Phrase("body", ["alpha", "beta"]), limit=None)) == 1499
        assert [h["id"] for h in s.search(wq.Term("tag", "t9"))] == ["new"]
        assert s.document(id="1499") == {"id": "1499"} and s.document(id="0") is None


@hsettings(max_examples=300, deadline=None)
@given(st.data())
def test_every_block_form_decodes_to_what_was_encoded(data):
    """Gaps that fit in u2 or not, weights 1.0 / whole counts / fractions, every kind of value."""
    from whoosh.system import pack_uint

    from search_service.engine.whoosh.codec import _encode_block, decode_block

    n = data.draw(st.integers(1, 40))
    gaps = data.draw(st.lists(st.one_of(st.integers(1, 5), st.integers(1, 1 << 20)), min_size=n - 1, max_size=n - 1))
    ids = [data.draw(st.integers(0, 1 << 20))]
    for gap in gaps:
        ids.append(ids[-1] + gap)
    kind = data.draw(st.sampled_from(["ones", "counts", "fractions"]))
    if kind == "ones":
        weights = [1.0] * n
    elif kind == "counts":
        weights = [float(w) for w in data.draw(st.lists(st.integers(1, 400), min_size=n, max_size=n))]
    else:
        weights = [
            float(np.float32(w))
            for w in data.draw(st.lists(st.floats(0.5, 1e6, allow_nan=False, width=32), min_size=n, max_size=n))
        ]
    value_kind = data.draw(st.sampled_from(["none", "counts", "fixed", "variable"]))
    if value_kind == "none":
        size, values = 0, []
    elif value_kind == "counts":  # Whoosh's Frequency format
        size, values = 4, [pack_uint(int(w)) if w.is_integer() else pack_uint(7) for w in weights]
    elif value_kind == "fixed":
        size, values = 3, [data.draw(st.binary(min_size=3, max_size=3)) for _ in range(n)]
    else:
        size, values = None, [data.draw(st.binary(min_size=1, max_size=9)) for _ in range(n)]
    got_ids, got_weights, got_values = decode_block(_encode_block(ids, weights, values, size), n, size)
    assert got_ids.tolist() == ids
    assert got_weights.tolist() == weights
    assert list(got_values) == (values if size != 0 else [None] * n)


@hsettings(max_examples=200, deadline=None)
@given(st.data(), st.booleans())
def test_field_blocks_encode_each_term_as_encode_block_does(data, with_values):
    """Many terms' postings encoded at once give each term the bytes of its own
    ``_encode_block``, or None where that takes another form (big gaps, big counts,
    values that may each be the count): for a ``Frequency`` field (no values) and for
    a variable-size format (each posting's bytes, as positions)."""
    from search_service.engine.whoosh.codec import FieldBlocks, _encode_block

    terms = data.draw(
        st.lists(
            st.tuples(
                st.lists(st.one_of(st.integers(1, 5), st.integers(1, 1 << 17)), min_size=1, max_size=30, unique=False),
                st.sampled_from(["ones", "small", "big"]),
            ),
            min_size=1,
            max_size=12,
        )
    )
    docs, counts, bounds = [], [], [0]
    for gaps, kind in terms:
        ids = [data.draw(st.integers(0, 1 << 18))]
        for gap in gaps[1:]:
            ids.append(ids[-1] + gap)
        docs += ids
        counts += [1 if kind == "ones" else data.draw(st.integers(1, 255 if kind == "small" else 600)) for _ in ids]
        bounds.append(len(docs))
    values = None
    if with_values:
        # Mostly positions (longer than 4 bytes), sometimes the count itself or 4 other bytes.
        values = [
            data.draw(
                st.one_of(
                    st.just(encode_positions(list(range(c)))), st.just(pack_uint(c)), st.binary(min_size=0, max_size=9)
                )
            )
            for c in counts
        ]
    held = None
    if values is not None:
        held = np.empty(len(values), dtype=object)
        held[:] = values
    blocks = FieldBlocks(np.array(docs, dtype=np.int32), np.array(counts, dtype=np.int32), np.array(bounds), held)
    for t in range(len(terms)):
        a, b = bounds[t], bounds[t + 1]
        got = blocks.data(t, a, b)
        expected = _encode_block(docs[a:b], counts[a:b], values[a:b] if values is not None else None, None)
        assert got is None or got == expected
        plain = values is None or any(len(v) != 4 for v in values[a:b])
        if b - a > 1 and max(counts[a:b]) < 256 and max(np.diff(docs[a:b]), default=0) < 1 << 16 and plain:
            assert got == expected
