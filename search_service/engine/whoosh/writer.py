"""Writing Whoosh segments fast, on every core.

Whoosh's ``SegmentWriter`` is general: each passage's tokens go through
``Format.word_values`` one ``Token`` at a time, every posting is a tuple in a
sorting pool that spills to pickled runs on disk (one ``pickle.dump`` and one
``pickle.load`` per posting past its memory limit), and at commit every
posting asks the lengths column for its document's field length. Profiled,
that was most of a reindex; jieba was the rest.

:class:`BulkSegmentWriter` writes the *same* segment files (same codec, same
posting values, weights, blocks and field lengths; ``tests/engine/whoosh/test_writer.py``
compares them with Whoosh's writer term by term) with less work per posting,
plus each segment's ranking postings (:mod:`.rankfile`), where alone it keeps the
gram fields' postings:

* our analyzers already return term lists, so a field's postings are a
  term counts (or positions, for phrase fields) rather than a token
  stream;
* postings are kept as columns (:class:`FieldPostings`), grouped by term with
  one sort at commit, and never spilled to disk;
* at commit each term's postings are cut into blocks directly, with the
  field lengths the writer already knows.

:func:`write_segments` finishes a segment and starts the next whenever a
writer's postings reach a memory budget (``SEARCH_WRITER_MEMORY_MB``), so a
version may hold several segments; :func:`write_parallel` runs it in a forked
process per core, each over a contiguous share of the passages, and commits
their segments together, in order, so document numbers follow the corpus order.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import pickle
import struct
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from whoosh import formats
from whoosh.filedb import filetables
from whoosh.analysis import Tokenizer
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3FieldWriter
from whoosh.system import pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

from search_service.engine.forked import ShareFailed, run_shares
from search_service.text.analysis import gram_text
from search_service.engine.whoosh.codec import ArrayCodec, ArrayPostingsWriter, FieldBlocks, _encode_block
from search_service.engine.whoosh.rankfile import EXT as RANKFILE_EXT, RankFileWriter, open_rankfile
from search_service.errors import BuildError

# Whoosh hands the codec each posting's field length as read back from its
# one-byte column; the blocks' length statistics must see the same values.
_STORED_LENGTH = [byte_to_length(length_to_byte(n)) for n in range(256)]


def stored_length(n: int) -> int:
    return _STORED_LENGTH[n] if n < 256 else byte_to_length(length_to_byte(n))


class _Postings:
    """One term's postings in one segment, in document order (postings merged in from another segment)."""

    __slots__ = ("docs", "weights", "values")

    def __init__(self) -> None:
        self.docs: list[int] = []
        self.weights: list[float] = []
        self.values: list[bytes] = []


class MemoryPool:
    """Stands in for Whoosh's ``PostingPool`` when a merge copies another segment's postings."""

    def __init__(self) -> None:
        self.terms: dict[tuple[str, bytes], _Postings] = {}
        self.fieldnames: set[str] = set()
        self.unordered = False  # set when a term's postings arrive out of document order

    def add(self, item: tuple[str, bytes, int, float, bytes | None]) -> None:
        """Whoosh's entry point (used when a merge copies another segment's postings)."""
        fieldname, tbytes, docnum, weight, value = item
        self.fieldnames.add(fieldname)
        p = self.terms.get((fieldname, tbytes))
        if p is None:
            p = self.terms[(fieldname, tbytes)] = _Postings()
        elif docnum <= p.docs[-1]:
            self.unordered = True
        p.docs.append(docnum)
        p.weights.append(weight)
        p.values.append(value or b"")

    def cleanup(self) -> None:
        self.terms = {}


# Whoosh's Frequency value of a count (pack_uint), for the counts a passage has.
_COUNT_VALUES = [pack_uint(n) for n in range(4096)]


def count_value(n: int) -> bytes:
    return _COUNT_VALUES[n] if n < 4096 else pack_uint(n)


# Whoosh's Positions value of a word met once, for the positions a passage has:
# most words of a passage occur once, and the format pickles every list.
_encode_positions = formats.Positions().encode
_ONE_POSITION = [_encode_positions([n]) for n in range(4096)]


def encode_positions(positions: list[int]) -> bytes:
    """``Positions.encode(positions)``, without a pickle for a word met once."""
    if len(positions) == 1 and positions[0] < 4096:
        return _ONE_POSITION[positions[0]]
    return _encode_positions(positions)


class FieldPostings:
    """One field's postings in a segment being written, as columns in document order.

    A word field keeps, per posting, its term's number (``vocab``), document and
    count, and for a positions field the encoded positions; a gram field keeps
    its gram's key (:func:`~search_service.text.analysis.gram_keys`) instead of a
    term number. No Python object per posting but a phrase field's positions,
    and :meth:`runs` groups them by term with one sort.
    """

    __slots__ = ("vocab", "term_ids", "gram_keys", "gram_docs", "gram_runs", "docs", "counts", "values", "nbytes")

    # Estimated bytes a posting costs: the columns, and a positions value's bytes object.
    POSTING_BYTES = 12
    GRAM_BYTES = 12  # a gram's key is 8 bytes, its document is a run per passage
    VALUE_BYTES = 48
    TERM_BYTES = 120  # a vocabulary entry

    def __init__(self, positions: bool) -> None:
        # A new word gets the next number as it is first looked up (in C, no call per word).
        self.vocab: defaultdict[str, int] = defaultdict(itertools.count().__next__)
        self.term_ids = array("i")
        self.docs = array("i")
        self.counts = array("i")
        self.values: list[bytes] | None = [] if positions else None
        self.gram_keys = array("q")
        self.gram_docs = array("i")  # a gram field's passages, each with its number of grams
        self.gram_runs = array("i")
        self.nbytes = 0

    def add_counts(self, docnum: int, counts: dict[str, int]) -> None:
        vocab = self.vocab
        before = len(vocab)
        ids = list(map(vocab.__getitem__, counts))
        self.term_ids.extend(ids)
        self.docs.extend([docnum] * len(ids))
        self.counts.extend(counts.values())
        self.nbytes += self.POSTING_BYTES * len(ids) + self.TERM_BYTES * (len(vocab) - before)

    def add_positions(self, docnum: int, positions: dict[str, list[int]], encode: Callable[[list[int]], bytes]
                      ) -> None:
        self.add_counts(docnum, {w: len(p) for w, p in positions.items()})
        assert self.values is not None
        self.values.extend(map(encode, positions.values()))
        self.nbytes += self.VALUE_BYTES * len(positions)

    def add_grams(self, docnum: int, keys: np.ndarray, counts: np.ndarray) -> None:
        # Appended to growing arrays, not kept as two small arrays a passage: a flush
        # reads them in place, with no copy to join them and no object per passage.
        self.gram_keys.frombytes(keys.astype(np.int64).tobytes())
        self.counts.frombytes(counts.astype(np.int32).tobytes())
        self.gram_docs.append(docnum)
        self.gram_runs.append(len(keys))
        self.nbytes += self.GRAM_BYTES * len(keys)

    def runs(self, lengths: dict[int, int] | None) -> "TermRuns":
        """The postings grouped by term, terms in byte order (as a segment's term table
        wants them), documents in order within a term: one NumPy sort, no Python
        object per posting (a positions field's values are reordered references).

        Consumes the column (its values). Positions are int32 (a segment holds
        fewer than 2 ** 31 postings): a flush's peak is these arrays, once per field."""
        grams = len(self.gram_keys) > 0
        keys = np.frombuffer(self.gram_keys, dtype=np.int64) if grams else np.frombuffer(self.term_ids, dtype=np.int32)
        counts = np.frombuffer(self.counts, dtype=np.int32)
        docs = (np.repeat(np.frombuffer(self.gram_docs, dtype=np.int32), np.frombuffer(self.gram_runs, dtype=np.int32))
                if grams else np.frombuffer(self.docs, dtype=np.int32))
        if not len(keys):
            empty = np.zeros(0, dtype=np.int32)
            return TermRuns([], np.zeros(1, dtype=np.int64), empty, empty, empty,
                            np.empty(0, dtype=object) if self.values is not None else None)
        order = _stable_order(keys)
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        if grams:
            names = [gram_text(k).encode("utf-8") for k in sorted_keys[starts].tolist()]
        else:
            words = list(self.vocab)
            names = [words[k].encode("utf-8") for k in sorted_keys[starts].tolist()]
        total = len(keys)
        del sorted_keys, keys
        # Terms in byte order: each term's run of postings moved whole, where the
        # runs in byte order put it (no second sort of the postings).
        by_bytes = np.array(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)
        sizes = np.diff(np.append(starts, total))[by_bytes]
        bounds = np.concatenate(([0], np.cumsum(sizes)))
        shift = np.repeat((starts[by_bytes] - bounds[:-1]).astype(np.int32), sizes)
        shift += np.arange(total, dtype=np.int32)
        order = order[shift]
        del shift
        docs, counts = docs[order], counts[order]
        if lengths is not None:
            by_doc = np.zeros(max(int(docs.max()), max(lengths, default=0)) + 1, dtype=np.int32)
            by_doc[list(lengths)] = list(lengths.values())
            doc_lengths = by_doc[docs]
        else:
            doc_lengths = np.zeros(len(docs), dtype=np.int32)
        values = None
        if self.values is not None:
            # Reordered as an array of references (a list made through order.tolist()
            # would hold a Python int per posting on top).
            held = np.empty(len(self.values), dtype=object)
            held[:] = self.values
            self.values = []
            values = held[order]
            del held
        return TermRuns([names[i] for i in by_bytes.tolist()], bounds, docs, counts, doc_lengths, values)


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` as int32: the postings grouped by key, documents
    in order within a key. When each key and its place fit in 63 bits together (a
    gram's key takes up to 39, leaving room for 16 million postings), one plain sort
    of ``key << bits | place`` gives the same order, faster than a
    stable sort (NumPy's, for 64-bit keys, is a timsort)."""
    bits = max(1, len(keys).bit_length())
    if len(keys) and int(keys.min()) >= 0 and int(keys.max()).bit_length() + bits <= 63:
        combined = keys.astype(np.int64)  # in place from here: a flush's peak memory is these arrays
        combined <<= bits
        combined |= np.arange(len(keys), dtype=np.int64)
        combined.sort()
        combined &= (1 << bits) - 1
        return combined.astype(np.int32)
    return np.argsort(keys, kind="stable").astype(np.int32)


class TermRuns(NamedTuple):
    """A field's postings grouped by term: term ``t`` (``names[t]``) has the postings
    ``bounds[t]:bounds[t + 1]`` of the columns."""

    names: list[bytes]
    bounds: np.ndarray
    docs: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray  # the field length of each posting's document (0: none recorded)
    values: np.ndarray | None  # a positions field's encoded positions (bytes objects); None: each is the count

    def windows(self) -> Iterator[tuple[int, int, list[int], list[int], list[int]]]:
        """(first term, end term, docs, counts, lengths): the terms in runs whose postings
        (from ``bounds[first]``) are made Python lists together, about ``_WINDOW`` at a time,
        so that a flush never holds a Python int per posting of the segment."""
        bounds = self.bounds
        first = 0
        while first < len(self.names):
            end = max(first + 1, int(np.searchsorted(bounds, bounds[first] + _WINDOW, side="right")) - 1)
            a, b = int(bounds[first]), int(bounds[end])
            yield (first, end, self.docs[a:b].tolist(), self.counts[a:b].tolist(), self.lengths[a:b].tolist())
            first = end

    def terms(self) -> Iterator[tuple[bytes, list[int], list[int], list[int], list[bytes] | None]]:
        """Each term's (bytes, documents, counts, field lengths, values)."""
        bounds = self.bounds.tolist()
        values = self.values
        for first, end, docs, counts, lengths in self.windows():
            base = bounds[first]
            for t in range(first, end):
                a, b = bounds[t] - base, bounds[t + 1] - base
                yield (self.names[t], docs[a:b], counts[a:b], lengths[a:b],
                       values[a + base:b + base].tolist() if values is not None else None)

    def term_infos(self) -> np.ndarray:
        """Each term's ``W3TermInfo`` head (``_TERMINFO``: its statistics), computed for all
        terms at once; the inlined flag is 0."""
        starts = self.bounds[:-1]
        infos = np.zeros(len(self.names), dtype=_TERMINFO_ARRAY)
        if not len(infos):
            return infos
        infos["weight"] = np.add.reduceat(self.counts, starts)
        infos["count"] = np.diff(self.bounds)
        present = np.where(self.lengths > 0, self.lengths, _NO_LENGTH)
        shortest = np.minimum.reduceat(present, starts)
        infos["min_length"] = np.where(shortest == _NO_LENGTH, 0, length_bytes(shortest))
        infos["max_length"] = length_bytes(np.maximum.reduceat(self.lengths, starts))
        infos["max_weight"] = np.maximum.reduceat(self.counts, starts)
        infos["first"] = self.docs[starts]
        infos["last"] = self.docs[self.bounds[1:] - 1]
        return infos


_WINDOW = 1 << 16  # postings turned into Python lists at a time, at a flush


class _BulkPostingsWriter(ArrayPostingsWriter):
    def add_postings(self, docs: Sequence[int], weights: Sequence[float], values: Sequence[bytes] | None,
                     lengths: Sequence[int]) -> None:
        """What ``add_posting`` does once per posting, a block at a time.

        Only for a term's first call (the block buffer is empty): blocks are
        full (``blocklimit``) except the last, which ``finish_postings``
        writes or inlines, exactly as the one-by-one path leaves them.
        ``values`` None: each is the count (Whoosh's ``Frequency``), ``pack_uint(weight)``.
        """
        limit = self._blocklimit
        for start in range(0, len(docs), limit):
            if start:
                self._write_block()
            end = start + limit
            self._ids = array("I", docs[start:end])
            self._weights = array("f", weights[start:end])
            self._values = None if values is None else [v for v in values[start:end] if v]
            self._maxweight = max(0, max(self._weights))
            block_lengths = [n for n in lengths[start:end] if n]
            self._minlength = min(block_lengths) if block_lengths else None
            self._maxlength = max(block_lengths, default=0)


class _BulkFieldWriter(W3FieldWriter):
    """Whoosh's field writer, whose term table writes its hash tables a bucket at a time."""

    def __init__(self, codec: Any, storage: Any, segment: Any) -> None:
        super().__init__(codec, storage, segment)
        self._tindex._write_hashes = functools.partial(_write_hashes, self._tindex)


def _write_hashes(tindex: Any) -> None:
    """``HashWriter._write_hashes``: the same 256 open-addressing tables (linear probing,
    in insertion order), each written in one piece instead of a write per slot."""
    dbfile = tindex.dbfile
    for entries in tindex.buckets:
        numslots = 2 * len(entries)
        tindex.directory.append((dbfile.tell(), numslots))
        hashes = [0] * numslots
        positions = [0] * numslots  # 0: an empty slot (no key starts at 0, the header does)
        for h, position in entries:
            slot = (h >> 8) % numslots
            while positions[slot]:
                slot = (slot + 1) % numslots
            hashes[slot] = h
            positions[slot] = position
        table = np.empty(numslots, dtype=_HASH_SLOT)
        table["hash"] = hashes
        table["position"] = positions
        dbfile.write(table.tobytes())


_HASH_SLOT = np.dtype([("hash", ">u4"), ("position", ">i8")])  # filetables._pointer
assert _HASH_SLOT.itemsize == filetables._pointer.size


class BulkCodec(ArrayCodec):
    """The service's codec (:mod:`codec`), plus block-at-a-time postings and term tables."""

    def field_writer(self, storage: Any, segment: Any) -> Any:
        return _BulkFieldWriter(self, storage, segment)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return _BulkPostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                                   compression=0, inlinelimit=self._inlinelimit)


class BulkSegmentWriter(SegmentWriter):
    """A Whoosh ``SegmentWriter`` that writes the same segment with less work per posting.

    Fields whose analyzer has a ``terms(text)`` method (ours, see
    :mod:`analyze`) and whose format is ``Frequency`` or ``Positions`` take
    the fast path (:class:`FieldPostings`); every other field (ids, numbers,
    metadata) goes through Whoosh's own ``field.index``.
    """

    def __init__(self, ix: Any, **kwargs: Any) -> None:
        kwargs.setdefault("codec", BulkCodec())
        super().__init__(ix, **kwargs)
        self.pool.cleanup()
        self.pool = MemoryPool()
        self._lengths: dict[str, dict[int, int]] = {}
        for name, field in self.schema.items():
            if field.vector or field.separate_spelling():
                raise ValueError(f"field {name!r}: term vectors and spelling are not supported")
        self._fast = {name: self._fast_kind(field) for name, field in self.schema.items()}
        self._columns: dict[str, FieldPostings] = {}
        self._merged = False

    def pool_bytes(self) -> int:
        """About how much memory this writer's postings take (what a memory budget compares)."""
        return sum(c.nbytes for c in self._columns.values()) + 200 * self.docnum

    def add_postings_to_pool(self, reader: Any, startdoc: int, docmap: Any) -> None:
        # A merge (commit(optimize=True), add_reader) brings postings whose
        # field lengths this writer did not record, in Whoosh's one-by-one way:
        # the columns go there too, so that each term's postings are in one place.
        self._merged = True
        self._spill_columns()
        super().add_postings_to_pool(reader, startdoc, docmap)
        # The gram fields' postings are only in the segment's ranking postings.
        ranks = open_rankfile(reader)
        if ranks is None:
            return
        add = self.pool.add
        for name, tbytes, ids, counts in ranks.terms({f for f in ranks.fields if self._rank_only(f)}):
            for doc, count in zip(ids.tolist(), counts.tolist()):
                if docmap is not None:
                    if doc not in docmap:  # deleted
                        continue
                    doc = docmap[doc]
                else:
                    doc += startdoc
                add((name, tbytes, doc, float(count), count_value(int(count))))

    def _rank_only(self, name: str) -> bool:
        """Whether a field's postings go to the ranking postings only: a gram field's, which
        only the ranker reads (no phrase, no Whoosh query is made of grams). Whoosh's term
        table and postings of the grams were most of a segment's terms and of the flush."""
        return self._fast.get(name) == "grams"

    def _spill_columns(self) -> None:
        for name, column in self._columns.items():
            for tbytes, docs, counts, _, values in column.runs(None).terms():
                for j, doc in enumerate(docs):
                    self.pool.add((name, tbytes, doc, float(counts[j]),
                                   values[j] if values is not None else count_value(counts[j])))
        self._columns = {}

    @staticmethod
    def _fast_kind(field: Any) -> str | None:
        if not field.indexed or not callable(getattr(field.analyzer, "positions", None)):
            return None
        if not isinstance(field.analyzer, Tokenizer) or field.format.field_boost != 1.0:
            return None
        if type(field.format) is formats.Frequency:
            return "grams" if callable(getattr(field.analyzer, "key_counts", None)) else "frequency"
        if type(field.format) is formats.Positions:
            return "positions"
        return None

    def add_document(self, **fields: Any) -> None:
        """Whoosh's ``SegmentWriter.add_document`` with the fast path for our fields."""
        self._check_state()
        perdocwriter = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        add_post = self.pool.add
        names = sorted(name for name in fields if not name.startswith("_"))
        self._check_fields(schema, names)
        perdocwriter.start_doc(docnum)
        try:
            for name in names:
                value = fields[name]
                if value is None:
                    continue
                field = schema[name]
                length = 0
                if name not in self._fast:  # a dynamic (glob) field
                    self._fast[name] = self._fast_kind(field)
                if field.indexed:
                    if self._fast[name] and isinstance(value, str):
                        length = self._index_fast(name, field, value, docnum)
                    else:
                        for tbytes, freq, weight, vbytes in field.index(value):
                            if field.scorable:
                                length += freq
                            add_post((name, tbytes, docnum, weight, vbytes))
                        if length:
                            self._lengths.setdefault(name, {})[docnum] = stored_length(length)
                stored = fields.get(f"_stored_{name}", value)
                perdocwriter.add_field(name, field, stored if field.stored else None, length)
                if field.column_type and stored is not None:
                    perdocwriter.add_column_value(name, field.column_type, field.to_column_value(stored))
        except Exception:
            perdocwriter.cancel_doc()
            raise
        perdocwriter.finish_doc()
        self._added = True
        self.docnum += 1

    def _index_fast(self, name: str, field: Any, text: str, docnum: int) -> int:
        """Add one fast field's postings; returns its length (number of tokens)."""
        kind = self._fast[name]
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = FieldPostings(kind == "positions")
        if kind == "grams":  # Frequency.word_values, counted with NumPy
            keys, counts = field.analyzer.key_counts(text)
            length = int(counts.sum())
            if length:
                column.add_grams(docnum, keys, counts)
        elif kind == "frequency":
            counts = {term: len(at) for term, at in field.analyzer.positions(text).items()}
            length = sum(counts.values())
            column.add_counts(docnum, counts)
        else:  # Positions.word_values, without tokens
            positions = field.analyzer.positions(text)
            length = sum(map(len, positions.values()))
            column.add_positions(docnum, positions, encode_positions)
        if length:
            self.pool.fieldnames.add(name)
            self._lengths.setdefault(name, {})[docnum] = stored_length(length)
        return length

    def _flush_segment(self) -> None:
        if self._merged:
            self._spill_columns()  # documents added after a merge
        self.perdocwriter.close()
        fieldwriter = self.fieldwriter
        by_field: dict[str, list[tuple[bytes, _Postings]]] = {}
        for (name, tbytes), p in self.pool.terms.items():
            by_field.setdefault(name, []).append((tbytes, p))
        readers: list[Any] = []

        def per_document_reader() -> Any:
            if not readers:
                readers.append(self.per_document_reader())
            return readers[0]

        # Every text field's postings go to the ranking postings file too (rankfile.py).
        ranks = RankFileWriter(self.newsegment.create_file(self.storage, RANKFILE_EXT))
        for name in sorted(by_field.keys() | self._columns.keys()):
            if self._rank_only(name):
                if name in self._columns:
                    runs = self._columns.pop(name).runs(None)
                    ranks.add_terms(name, runs.names, runs.bounds, runs.docs, runs.counts)
                else:
                    ranks.add_terms(name, *_pool_runs(_in_order(by_field[name], self.pool.unordered)))
                continue
            field = self.schema[name]
            lengths: Any = None
            if field.scorable:
                known = self._lengths.get(name, {})
                lengths = _Lengths(known, name, per_document_reader) if self._merged else known
            fieldwriter.start_field(name, field)
            ranked = ranks if self._fast.get(name) else None
            if name in self._columns:
                self._write_columns(fieldwriter, self._columns.pop(name), lengths, ranked)
            else:
                self._write_pool(fieldwriter, by_field[name], lengths, ranked)
            fieldwriter.finish_field()
        ranks.close()
        fieldwriter.close()
        for reader in readers:
            reader.close()

    def _write_columns(self, fieldwriter: Any, column: FieldPostings, lengths: dict[int, int] | None,
                       ranks: RankFileWriter | None) -> None:
        postwriter = fieldwriter._postwriter
        postfile = fieldwriter._postfile
        value_size = fieldwriter._format.fixed_value_size()
        key_prefix = pack_ushort(fieldwriter._fieldid)
        inline_limit = self.codec._inlinelimit
        block_limit = self.codec._blocklimit
        runs = column.runs(lengths)
        del column
        if ranks is not None:
            ranks.add_terms(fieldwriter._fieldname, runs.names, runs.bounds, runs.docs, runs.counts)
        infos = runs.term_infos()
        infos["inlined"] = np.diff(runs.bounds) < inline_limit
        heads = infos.tobytes()
        # A one-block term's block statistics: what Whoosh pickles before its data.
        infos_max_weight = infos["max_weight"].tolist()
        infos_min_length = infos["min_length"].tolist()
        infos_max_length = infos["max_length"].tolist()
        # One-block terms encoded field-wide; a fixed-size format's values, one term at a time.
        blocks = (FieldBlocks(runs.docs, runs.counts, runs.bounds, runs.values)
                  if runs.values is None or value_size is None or value_size < 0 else None)
        size = _TERMINFO.size
        names = runs.names
        bounds = runs.bounds.tolist()
        all_values = runs.values
        dumps = pickle.dumps
        rows: list[tuple[bytes, bytes]] = []
        # Where the next block goes, kept here: asking the file (``tell``) before and
        # after each of a field's thousands of blocks cost as much as writing them.
        offset: int | None = None
        for first, end, docs, counts, doc_lengths in runs.windows():
            # A window's term table rows written as it ends: a field of a million rare
            # grams would otherwise hold a million (key, value) pairs at once.
            _add_terms(fieldwriter._tindex, rows)
            rows = []
            base = bounds[first]
            for t in range(first, end):
                a, b = bounds[t] - base, bounds[t + 1] - base
                n = b - a
                if n < inline_limit:
                    # Most terms (rare bigrams) occur in a few passages: their postings go
                    # into the term table (W3TermInfo's inlined form), with no block.
                    c = counts[a:b]
                    values = (tuple(all_values[a + base:b + base]) if all_values is not None
                              else tuple(map(count_value, c)))
                    rows.append((key_prefix + names[t], heads[t * size:(t + 1) * size]
                                 + dumps((tuple(docs[a:b]), tuple(map(float, c)), values), 2)))
                elif n <= block_limit:
                    if offset is None:
                        offset = postfile.tell()
                    data = blocks.data(t, a + base, b + base) if blocks is not None else None
                    if data is None:
                        values = all_values[a + base:b + base].tolist() if all_values is not None else None
                        data = _encode_block(docs[a:b], counts[a:b], values, value_size)
                    info = dumps((n, docs[b - 1], float(infos_max_weight[t]), 0, infos_min_length[t],
                                  infos_max_length[t]), 2)
                    block = b"".join((WHOOSH3_HEADER_MAGIC, pack_int(-(len(info) + len(data))), info, data))
                    postfile.write(block)
                    rows.append((key_prefix + names[t], heads[t * size:(t + 1) * size] + pack_long(offset)
                                 + pack_int(len(block))))
                    offset += len(block)
                else:
                    _add_terms(fieldwriter._tindex, rows)
                    rows = []
                    fieldwriter.start_term(names[t])
                    values = all_values[a + base:b + base].tolist() if all_values is not None else None
                    postwriter.add_postings(docs[a:b], counts[a:b], values, doc_lengths[a:b])
                    fieldwriter.finish_term()
                    offset = None  # the postings writer wrote there too
        _add_terms(fieldwriter._tindex, rows)

    def _write_pool(self, fieldwriter: Any, terms: list[tuple[bytes, _Postings]], lengths: Any,
                    ranks: RankFileWriter | None) -> None:
        postwriter = fieldwriter._postwriter
        key_prefix = pack_ushort(fieldwriter._fieldid)
        inline_limit = self.codec._inlinelimit
        inlined: list[tuple[bytes, bytes]] = []
        terms = _in_order(terms, self.pool.unordered)
        if ranks is not None:
            ranks.add_terms(fieldwriter._fieldname, *_pool_runs(terms))
        for tbytes, p in terms:
            docs = p.docs
            doc_lengths = [lengths.get(d, 0) for d in docs] if lengths is not None else [0] * len(docs)
            if len(docs) < inline_limit:
                inlined.append((key_prefix + tbytes, _inlined_terminfo(docs, p.weights, p.values, doc_lengths)))
                continue
            _add_terms(fieldwriter._tindex, inlined)
            inlined = []
            fieldwriter.start_term(tbytes)
            postwriter.add_postings(docs, p.weights, p.values, doc_lengths)
            fieldwriter.finish_term()
        _add_terms(fieldwriter._tindex, inlined)


def _in_order(terms: list[tuple[bytes, _Postings]], unordered: bool) -> list[tuple[bytes, _Postings]]:
    """Pooled terms in byte order, each term's postings put in document order where a
    merge left them out of order."""
    ordered = sorted(terms, key=lambda item: item[0])
    if unordered:
        for _, p in ordered:
            if any(a >= b for a, b in zip(p.docs, p.docs[1:])):
                order = sorted(range(len(p.docs)), key=p.docs.__getitem__)
                p.docs = [p.docs[i] for i in order]
                p.weights = [p.weights[i] for i in order]
                p.values = [p.values[i] for i in order]
    return ordered


def _pool_runs(terms: list[tuple[bytes, _Postings]]) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Pooled terms (:func:`_in_order`) as :meth:`RankFileWriter.add_terms` takes them:
    names, bounds, documents, weights."""
    names: list[bytes] = []
    bounds = [0]
    docs = array("i")
    weights = array("f")
    for tbytes, p in terms:
        names.append(tbytes)
        docs.extend(p.docs)
        weights.extend(p.weights)
        bounds.append(len(docs))
    return (names, np.array(bounds, dtype=np.int64), np.frombuffer(docs, dtype=np.int32),
            np.frombuffer(weights, dtype=np.float32))


_TERMINFO = struct.Struct("!BfIBBfII")  # W3TermInfo._struct
# The same, as a NumPy record (packed, big-endian), to compute every term's at once.
_TERMINFO_ARRAY = np.dtype([("inlined", "u1"), ("weight", ">f4"), ("count", ">u4"), ("min_length", "u1"),
                            ("max_length", "u1"), ("max_weight", ">f4"), ("first", ">u4"), ("last", ">u4")])
assert _TERMINFO_ARRAY.itemsize == _TERMINFO.size
_NO_LENGTH = np.iinfo(np.int32).max
_LENGTH_BYTES = np.array([byte_to_length(b) for b in range(256)], dtype=np.int64)


def length_bytes(lengths: np.ndarray) -> np.ndarray:
    """Whoosh's ``length_to_byte`` of each length (the smallest byte whose length is not below it)."""
    return np.minimum(np.searchsorted(_LENGTH_BYTES, lengths, side="left"), 255)


def _inlined_terminfo(docs: Sequence[int], weights: Sequence[float], values: Sequence[bytes],
                      lengths: Sequence[int]) -> bytes:
    """``W3TermInfo.to_bytes()`` of a term whose postings are inlined, as
    ``start_postings`` + ``add_posting``s + ``finish_postings`` would make it."""
    stored_weights = tuple(array("f", weights))
    present = [n for n in lengths if n]
    head = _TERMINFO.pack(
        1,  # inlined
        sum(stored_weights),
        len(docs),
        length_to_byte(min(present)) if present else 0,
        length_to_byte(max(present, default=0)),
        max(0, max(weights)),
        docs[0],
        docs[-1],
    )
    kept = tuple(v for v in values if v) or (b"",) * len(docs)
    return head + pickle.dumps((tuple(docs), stored_weights, kept), 2)


def _add_terms(tindex: Any, items: list[tuple[bytes, bytes]]) -> None:
    """``OrderedHashWriter.add`` for each (key, value) of ``items``, in one write."""
    if not items:
        return
    if tindex.hashfn is not filetables.md5_hash or items[0][0] <= tindex.lastkey:
        for key, value in items:  # not the layout this shortcut knows: Whoosh's own way
            tindex.add(key, value)
        return
    dbfile = tindex.dbfile
    buckets = tindex.buckets
    index = tindex.index
    pack = _KEY_VALUE_LENGTHS.pack
    pos = dbfile.tell()
    parts = []
    for key, value in items:
        index.append(pos)
        # md5_hash(key): the digest's last four bytes, read as an integer
        h = int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[12:], "big")
        buckets[h & 255].append((h, pos))
        head = pack(len(key), len(value))
        parts += (head, key, value)
        pos += len(head) + len(key) + len(value)
    dbfile.write(b"".join(parts))
    tindex.lastkey = items[-1][0]


_KEY_VALUE_LENGTHS = struct.Struct("!ii")  # filetables._lengths


class _Lengths:
    """Field lengths for a field's postings: the ones this writer recorded, and
    for documents merged in from another segment, what Whoosh stored for them
    (read back as Whoosh's own writer reads every one)."""

    def __init__(self, known: dict[int, int], name: str, per_document_reader: Callable[[], Any]) -> None:
        self._known = known
        self._name = name
        self._per_document_reader = per_document_reader

    def get(self, docnum: int, default: int = 0) -> int:
        n = self._known.get(docnum)
        if n is None:
            n = self._per_document_reader().doc_field_length(docnum, self._name) or default
        return n


def write_parallel(ix: Any, batches: Sequence[Iterable[dict[str, Any]]], budget_bytes: int,
                   progress: Callable[[int], Any] | None = None) -> None:
    """Write each batch of documents as segments (:func:`write_segments`), in a forked
    process per batch; commit all.

    The segments are committed in batch order, so document numbers follow
    the order of ``batches``. Raises :class:`BuildError` if any process fails;
    then nothing is committed.
    """
    try:
        shares = run_shares(functools.partial(_write_batch, ix, budget_bytes), batches, progress)
    except ShareFailed as exc:
        raise BuildError(f"building the index failed ({exc}); the previous version stays current") from None
    commit_segments(ix, [segment for segments in shares for segment in segments])


def commit_segments(ix: Any, segments: list[Any]) -> None:
    """Add written segments to the index, after its existing ones, in order."""
    writer = ix.writer()
    writer.commit(mergetype=lambda w, existing: [*existing, *segments])


def write_segments(ix: Any, documents: Iterable[dict[str, Any]], budget_bytes: int,
                   count: Callable[[int], None] | None = None) -> list[Any]:
    """``documents`` written as segments (not committed), in order: a segment is finished
    whenever the postings its writer holds reach ``budget_bytes``, so a writer's memory
    is bounded by the budget, not by the corpus. ``count(n)``: n more documents written."""
    segments = []
    writer = None
    added = 0
    try:
        for fields in documents:
            if writer is None:
                writer = BulkSegmentWriter(ix, _lk=False)
            writer.add_document(**fields)
            added += 1
            if added % 200 == 0:
                if count is not None:
                    count(200)
                if writer.pool_bytes() >= budget_bytes:
                    segments.append(_finish(writer))
                    writer = None
        if count is not None:
            count(added % 200)
        if writer is not None:
            segments.append(_finish(writer))
    except BaseException:
        if writer is not None:
            writer.cancel()
        raise
    return segments


def _finish(writer: BulkSegmentWriter) -> Any:
    segment = writer._finalize_segment()
    writer._tempstorage.destroy()
    return segment


def _own_temp_storage(storage: Any) -> None:
    """Give this process temporary folders of its own. Whoosh names a writer's
    temporary folder after the index (``MAIN.tmp``), so parallel writers would
    share it, and the first to finish would remove it under the others (their
    compound files are assembled there)."""
    shared = storage.temp_storage
    suffix = f".{os.getpid()}"
    storage.temp_storage = lambda name=None: shared(name + suffix if name else None)


def _write_batch(ix: Any, budget_bytes: int, number: int, batch: Iterable[dict[str, Any]],
                 count: Callable[[int], None]) -> list[Any]:
    """The segments of ``batch``'s documents, written (not committed) in this forked process."""
    _own_temp_storage(ix.storage)  # this process's copy of the storage object
    return write_segments(ix, batch, budget_bytes, count)
