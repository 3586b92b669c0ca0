"""A segment's postings in memory, as columns: what :class:`~.writer.BulkSegmentWriter`
keeps per field until a flush, then turns into runs of one term's postings.

A field's postings are a passage's term counts (or positions, for phrase fields)
appended as arrays, never a tuple per posting; at a flush one stable sort groups
them by term (:meth:`FieldPostings.runs`). :class:`MemoryPool` stands in for
Whoosh's posting pool when a merge copies another segment's postings.
"""

from __future__ import annotations

import itertools
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
from whoosh import formats
from whoosh.system import pack_uint
from whoosh.util.numeric import byte_to_length, length_to_byte

from search_service.engine.whoosh.segfiles import NO_LENGTH, TERMINFO_ARRAY, length_bytes
from search_service.text.analysis import gram_text

_WINDOW = 1 << 16  # postings turned into Python lists at a time, at a flush

# Whoosh hands the codec each posting's field length as read back from its
# one-byte column; the blocks' length statistics must see the same values.
_STORED_LENGTH: list[int] = [byte_to_length(length_to_byte(n)) for n in range(256)]


def stored_length(n: int) -> int:
    if n < 256:
        return _STORED_LENGTH[n]
    length: int = byte_to_length(length_to_byte(n))
    return length


class TermPostings:
    """One term's postings in one segment, in document order (postings merged in from another segment)."""

    __slots__ = ("docs", "values", "weights")

    def __init__(self) -> None:
        self.docs: list[int] = []
        self.weights: list[float] = []
        self.values: list[bytes] = []


class MemoryPool:
    """Stands in for Whoosh's ``PostingPool`` when a merge copies another segment's postings."""

    def __init__(self) -> None:
        self.terms: dict[tuple[str, bytes], TermPostings] = {}
        self.fieldnames: set[str] = set()
        self.unordered = False  # set when a term's postings arrive out of document order

    def add(self, item: tuple[str, bytes, int, float, bytes | None]) -> None:
        """Whoosh's entry point (used when a merge copies another segment's postings)."""
        fieldname, tbytes, docnum, weight, value = item
        self.fieldnames.add(fieldname)
        p = self.terms.get((fieldname, tbytes))
        if p is None:
            p = self.terms[(fieldname, tbytes)] = TermPostings()
        elif docnum <= p.docs[-1]:
            self.unordered = True
        p.docs.append(docnum)
        p.weights.append(weight)
        p.values.append(value or b"")

    def cleanup(self) -> None:
        self.terms = {}


# Whoosh's Frequency value of a count (pack_uint), for the counts a passage has.
_COUNT_VALUES: list[bytes] = [pack_uint(n) for n in range(4096)]


def count_value(n: int) -> bytes:
    if n < 4096:
        return _COUNT_VALUES[n]
    value: bytes = pack_uint(n)
    return value


# Whoosh's Positions value of a word met once, for the positions a passage has:
# most words of a passage occur once, and the format pickles every list.
_encode_positions: Callable[[list[int]], bytes] = formats.Positions().encode
_ONE_POSITION: list[bytes] = [_encode_positions([n]) for n in range(4096)]


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

    __slots__ = ("counts", "docs", "gram_docs", "gram_keys", "gram_runs", "nbytes", "term_ids", "values", "vocab")

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

    def add_positions(self, docnum: int, positions: dict[str, list[int]], encode: Callable[[list[int]], bytes]) -> None:
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

    def runs(self, lengths: dict[int, int] | None) -> TermRuns:
        """The postings grouped by term, terms in byte order (as a segment's term table
        wants them), documents in order within a term: one NumPy sort, no Python
        object per posting (a positions field's values are reordered references).

        Consumes the column (its values). Positions are int32 (a segment holds
        fewer than 2 ** 31 postings): a flush's peak is these arrays, once per field."""
        grams = len(self.gram_keys) > 0
        keys = np.frombuffer(self.gram_keys, dtype=np.int64) if grams else np.frombuffer(self.term_ids, dtype=np.int32)
        counts = np.frombuffer(self.counts, dtype=np.int32)
        docs = (
            np.repeat(np.frombuffer(self.gram_docs, dtype=np.int32), np.frombuffer(self.gram_runs, dtype=np.int32))
            if grams
            else np.frombuffer(self.docs, dtype=np.int32)
        )
        if not len(keys):
            return TermRuns.empty(with_values=self.values is not None)
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
        doc_lengths = _lengths_of(docs, lengths)
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


def _lengths_of(docs: np.ndarray, lengths: dict[int, int] | None) -> np.ndarray:
    """Each posting's document's field length (zeros when the field keeps none)."""
    if lengths is None:
        return np.zeros(len(docs), dtype=np.int32)
    by_doc = np.zeros(max(int(docs.max()), max(lengths, default=0)) + 1, dtype=np.int32)
    by_doc[list(lengths)] = list(lengths.values())
    of_postings: np.ndarray = by_doc[docs]
    return of_postings


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

    @classmethod
    def empty(cls, with_values: bool) -> TermRuns:
        none = np.zeros(0, dtype=np.int32)
        return cls(
            [], np.zeros(1, dtype=np.int64), none, none, none, np.empty(0, dtype=object) if with_values else None
        )

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
                yield (
                    self.names[t],
                    docs[a:b],
                    counts[a:b],
                    lengths[a:b],
                    values[a + base : b + base].tolist() if values is not None else None,
                )

    def term_infos(self) -> np.ndarray:
        """Each term's ``W3TermInfo`` head (``TERMINFO``: its statistics), computed for all
        terms at once; the inlined flag is 0."""
        starts = self.bounds[:-1]
        infos = np.zeros(len(self.names), dtype=TERMINFO_ARRAY)
        if not len(infos):
            return infos
        infos["weight"] = np.add.reduceat(self.counts, starts)
        infos["count"] = np.diff(self.bounds)
        present = np.where(self.lengths > 0, self.lengths, NO_LENGTH)
        shortest = np.minimum.reduceat(present, starts)
        infos["min_length"] = np.where(shortest == NO_LENGTH, 0, length_bytes(shortest))
        infos["max_length"] = length_bytes(np.maximum.reduceat(self.lengths, starts))
        infos["max_weight"] = np.maximum.reduceat(self.counts, starts)
        infos["first"] = self.docs[starts]
        infos["last"] = self.docs[self.bounds[1:] - 1]
        return infos


def in_order(terms: list[tuple[bytes, TermPostings]], unordered: bool) -> list[tuple[bytes, TermPostings]]:
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


def pool_runs(terms: list[tuple[bytes, TermPostings]]) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Pooled terms (:func:`in_order`) as :meth:`RankFileWriter.add_terms` takes them:
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
    return (
        names,
        np.array(bounds, dtype=np.int64),
        np.frombuffer(docs, dtype=np.int32),
        np.frombuffer(weights, dtype=np.float32),
    )
