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

from pickle import dumps
from typing import Any

import numpy as np
from whoosh import formats
from whoosh.analysis import Tokenizer
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC
from whoosh.system import pack_int, pack_long, pack_ushort
from whoosh.writing import SegmentWriter

from search_service.engine.whoosh.codec import FieldBlocks, _encode_block
from search_service.engine.whoosh.columns import (
    FieldPostings,
    MemoryPool,
    TermPostings,
    TermRuns,
    count_value,
    encode_positions,
    in_order,
    pool_runs,
    stored_length,
)
from search_service.engine.whoosh.rankfile import EXT as RANKFILE_EXT
from search_service.engine.whoosh.rankfile import RankFileWriter, open_rankfile
from search_service.engine.whoosh.segfiles import TERMINFO, BulkCodec, StoredLengths, add_terms, inlined_terminfo
from search_service.fields import FIELDS_BY_NAME


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
        self.pool.cleanup()  # Whoosh's pool: its temporary files
        self.pool: MemoryPool = MemoryPool()
        self._lengths: dict[str, dict[int, int]] = {}
        for name, field in self.schema.items():
            if field.vector or field.separate_spelling():
                raise ValueError(f"field {name!r}: term vectors and spelling are not supported")
        self._fast = {name: self._fast_kind(field) for name, field in self.schema.items()}
        self._columns: dict[str, FieldPostings] = {}
        self._merged = False

    def pool_bytes(self) -> int:
        """About how much memory this writer's postings take (what a memory budget compares)."""
        docs: int = self.docnum
        return sum(c.nbytes for c in self._columns.values()) + 200 * docs

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
        """Whether a field's postings go to the ranking postings only: a gram or pair field's,
        which only the ranker reads (:attr:`~search_service.fields.Field.rank_only`). Whoosh's
        term table and postings of the grams were most of a segment's terms and of the flush."""
        field = FIELDS_BY_NAME.get(name)
        return field is not None and field.rank_only

    def _spill_columns(self) -> None:
        for name, column in self._columns.items():
            for tbytes, docs, counts, _, values in column.runs(None).terms():
                for j, doc in enumerate(docs):
                    self.pool.add(
                        (
                            name,
                            tbytes,
                            doc,
                            float(counts[j]),
                            values[j] if values is not None else count_value(counts[j]),
                        )
                    )
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
        by_field: dict[str, list[tuple[bytes, TermPostings]]] = {}
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
                    ranks.add_terms(name, *pool_runs(in_order(by_field[name], self.pool.unordered)))
                continue
            field = self.schema[name]
            lengths: Any = None
            if field.scorable:
                known = self._lengths.get(name, {})
                lengths = StoredLengths(known, name, per_document_reader) if self._merged else known
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

    def _write_columns(
        self, fieldwriter: Any, column: FieldPostings, lengths: dict[int, int] | None, ranks: RankFileWriter | None
    ) -> None:
        postfile = fieldwriter._postfile
        value_size = fieldwriter._format.fixed_value_size()
        key_prefix = pack_ushort(fieldwriter._fieldid)
        inline_limit = self.codec._inlinelimit
        block_limit = self.codec._blocklimit
        runs = column.runs(lengths)
        del column
        if ranks is not None:
            ranks.add_terms(fieldwriter._fieldname, runs.names, runs.bounds, runs.docs, runs.counts)
        heads, infos_max_weight, infos_min_length, infos_max_length = _term_heads(runs, inline_limit)
        blocks = _field_blocks(runs, value_size)
        names = runs.names
        bounds = runs.bounds.tolist()
        all_values = runs.values
        rows: list[tuple[bytes, bytes]] = []
        # Where the next block goes, kept here: asking the file (``tell``) before and
        # after each of a field's thousands of blocks cost as much as writing them.
        offset: int | None = None
        for first, end, docs, counts, doc_lengths in runs.windows():
            # A window's term table rows written as it ends: a field of a million rare
            # grams would otherwise hold a million (key, value) pairs at once.
            add_terms(fieldwriter._tindex, rows)
            rows = []
            base = bounds[first]
            for t in range(first, end):
                a, b = bounds[t] - base, bounds[t + 1] - base
                n = b - a
                if n < inline_limit:
                    # Most terms (rare bigrams) occur in a few passages: their postings go
                    # into the term table (W3TermInfo's inlined form), with no block.
                    c = counts[a:b]
                    inlined = (
                        tuple(all_values[a + base : b + base]) if all_values is not None else tuple(map(count_value, c))
                    )
                    postings = dumps((tuple(docs[a:b]), tuple(map(float, c)), inlined), 2)
                    rows.append((key_prefix + names[t], heads[t * _HEAD : (t + 1) * _HEAD] + postings))
                elif n <= block_limit:
                    if offset is None:
                        offset = postfile.tell()
                    data = blocks.data(t, a + base, b + base) if blocks is not None else None
                    if data is None:
                        values = all_values[a + base : b + base].tolist() if all_values is not None else None
                        data = _encode_block(docs[a:b], counts[a:b], values, value_size)
                    stats = (n, docs[b - 1], float(infos_max_weight[t]), 0, infos_min_length[t], infos_max_length[t])
                    size = _write_one_block(postfile, stats, data)
                    head = heads[t * _HEAD : (t + 1) * _HEAD]
                    rows.append((key_prefix + names[t], head + pack_long(offset) + pack_int(size)))
                    offset += size
                else:  # several blocks: Whoosh's postings writer, a block at a time
                    add_terms(fieldwriter._tindex, rows)
                    rows = []
                    values = all_values[a + base : b + base].tolist() if all_values is not None else None
                    _write_blocks(fieldwriter, names[t], docs[a:b], counts[a:b], values, doc_lengths[a:b])
                    offset = None  # the postings writer wrote there too
        add_terms(fieldwriter._tindex, rows)

    def _write_pool(
        self, fieldwriter: Any, terms: list[tuple[bytes, TermPostings]], lengths: Any, ranks: RankFileWriter | None
    ) -> None:
        postwriter = fieldwriter._postwriter
        key_prefix = pack_ushort(fieldwriter._fieldid)
        inline_limit = self.codec._inlinelimit
        inlined: list[tuple[bytes, bytes]] = []
        terms = in_order(terms, self.pool.unordered)
        if ranks is not None:
            ranks.add_terms(fieldwriter._fieldname, *pool_runs(terms))
        for tbytes, p in terms:
            docs = p.docs
            doc_lengths = [lengths.get(d, 0) for d in docs] if lengths is not None else [0] * len(docs)
            if len(docs) < inline_limit:
                inlined.append((key_prefix + tbytes, inlined_terminfo(docs, p.weights, p.values, doc_lengths)))
                continue
            add_terms(fieldwriter._tindex, inlined)
            inlined = []
            fieldwriter.start_term(tbytes)
            postwriter.add_postings(docs, p.weights, p.values, doc_lengths)
            fieldwriter.finish_term()
        add_terms(fieldwriter._tindex, inlined)


_HEAD = TERMINFO.size  # a term info's head in the term table: its statistics


def _term_heads(runs: TermRuns, inline_limit: int) -> tuple[bytes, list[float], list[int], list[int]]:
    """Every term's ``W3TermInfo`` head, as one byte string (inlined when it has fewer than
    ``inline_limit`` postings); and, for a one-block term, the block statistics Whoosh
    pickles before its data: the greatest weight, the least and greatest field length."""
    infos = runs.term_infos()
    infos["inlined"] = np.diff(runs.bounds) < inline_limit
    return (infos.tobytes(), infos["max_weight"].tolist(), infos["min_length"].tolist(), infos["max_length"].tolist())


def _field_blocks(runs: TermRuns, value_size: int | None) -> FieldBlocks | None:
    """The field's one-block terms encoded field-wide, when its values allow it (none,
    or of varying size); else None: a fixed-size format's values, one term at a time."""
    if runs.values is None or value_size is None or value_size < 0:
        return FieldBlocks(runs.docs, runs.counts, runs.bounds, runs.values)
    return None


def _write_one_block(postfile: Any, stats: tuple[Any, ...], data: bytes) -> int:
    """A term's only block, as Whoosh frames it (its statistics pickled before its data); its size."""
    info = dumps(stats, 2)
    block = b"".join((WHOOSH3_HEADER_MAGIC, pack_int(-(len(info) + len(data))), info, data))
    postfile.write(block)
    return len(block)


def _write_blocks(
    fieldwriter: Any, name: bytes, docs: list[int], counts: list[int], values: list[bytes] | None, lengths: list[int]
) -> None:
    """A term of more than one block's postings, through the field's postings writer."""
    fieldwriter.start_term(name)
    fieldwriter._postwriter.add_postings(docs, counts, values, lengths)
    fieldwriter.finish_term()
