"""What the ranker (:mod:`search_service.engine.bm25`) reads from a Whoosh index:
posting arrays, field lengths, and the passages matching a constraint."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.matching import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

from search_service.engine.plan import AllOf, AnyOf, Constraint, HasMetadata, HasPhrase, HasTerm, InDocument
from search_service.engine.whoosh.codec import ArrayCodec, entry_arrays, term_arrays
from search_service.engine.whoosh.rankfile import RankFile, open_rankfile, term_key
from search_service.engine.whoosh.schema import META_PREFIX

# Whoosh stores each field length as one byte; this decodes all 256 at once.
_BYTE_TO_LENGTH = np.array([byte_to_length(i) for i in range(256)], dtype=np.float64)


def rank_files(reader: Any) -> list[RankFile | None]:
    """The ranking postings of each segment of ``reader`` (None: a segment without them)."""
    return [open_rankfile(segment) for segment, _ in reader.leaf_readers()]


class ReaderSource:
    """A :class:`~search_service.engine.bm25.PostingSource` over one Whoosh searcher
    (Whoosh readers share file positions: one per thread), and the ranking postings
    of its segments (:func:`rank_files`; shared by threads: they are read with ``pread``)."""

    def __init__(self, searcher: Any, ranks: list[RankFile | None] | None = None) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.ranks = ranks

    def term_postings(self, field: str, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        ids: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        key, keyhash = term_key(field, term)
        for (segment, base), rank in zip(self.reader.leaf_readers(), self.ranks or itertools.repeat(None)):
            if rank is not None and field in rank.fields:
                found = rank.postings(key, keyhash, base)
            else:
                if isinstance(getattr(segment._terms, "_codec", None), ArrayCodec):
                    found = term_arrays(segment._terms, field, term.encode("utf-8"))
                else:
                    found = _decode(segment, field, term)
                if found is not None:  # a copy: the cache must not hold the file's bytes
                    found = found[0].astype(np.int32) + base, found[1]
            if found is not None:
                ids.append(found[0])
                counts.append(found[1])
        if not ids:
            return None
        if len(ids) == 1:
            return ids[0], counts[0]
        return np.concatenate(ids), np.concatenate(counts)

    def matching(self, constraint: Constraint) -> np.ndarray:
        return np.flatnonzero(self._mask(constraint))

    def _mask(self, c: Constraint) -> np.ndarray:
        """The passages matching ``c``, as a mask over document numbers. Terms are
        decided on their posting arrays and combined with NumPy, so a query of
        many ``-word`` clauses costs array operations, not a Python walk over
        postings; only phrases need Whoosh's matchers (positions)."""
        if isinstance(c, AllOf | AnyOf):
            masks = [self._mask(i) for i in c.items]
            combine = np.logical_and if isinstance(c, AllOf) else np.logical_or
            return combine.reduce(masks) if masks else np.zeros(self.reader.doc_count_all(), dtype=bool)
        mask = np.zeros(self.reader.doc_count_all(), dtype=bool)
        if isinstance(c, HasPhrase):
            mask[np.fromiter(self.searcher.docs_for_query(whoosh_query(c)), dtype=np.int64)] = True
            return mask
        if isinstance(c, HasTerm):
            field, text = c.field, c.text
        elif isinstance(c, InDocument):
            field, text = "doc_id", c.doc_id
        elif isinstance(c, HasMetadata):
            field, text = META_PREFIX + c.key, c.value
        else:
            raise TypeError(f"not a constraint: {c!r}")
        found = self.term_postings(field, text)
        if found is not None:
            mask[found[0]] = True  # deleted passages too: the ranker leaves them out
        return mask


def whoosh_query(c: Constraint) -> wq.Query:
    """The Whoosh query matching the passages of a plan's constraint."""
    if isinstance(c, HasTerm):
        return wq.Term(c.field, c.text)
    if isinstance(c, HasPhrase):
        return wq.Phrase(c.field, list(c.words))
    if isinstance(c, InDocument):
        return wq.Term("doc_id", c.doc_id)
    if isinstance(c, HasMetadata):
        return wq.Term(META_PREFIX + c.key, c.value)
    if isinstance(c, AllOf):
        return wq.And([whoosh_query(i) for i in c.items])
    if isinstance(c, AnyOf):
        return wq.Or([whoosh_query(i) for i in c.items])
    raise TypeError(f"not a constraint: {c!r}")


def field_lengths(reader: Any, field: str) -> np.ndarray:
    """Every document's length of ``field`` (deleted ones included), as Whoosh stores it: one byte each."""
    lengths = np.zeros(reader.doc_count_all(), dtype=np.float64)
    for segment, base in reader.leaf_readers():
        column = segment._perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN)
        if column is None:  # no document of this segment has the field
            continue
        # A fixed-size column stores one byte per document up to the last
        # non-zero one; the rest are the default (0).
        raw = column._dbfile.get(column._basepos, column._count)
        codes = np.frombuffer(raw, dtype=np.uint8)
        lengths[base : base + len(codes)] = _BYTE_TO_LENGTH[codes]
    return lengths


def document_groups(reader: Any) -> tuple[np.ndarray, dict[str, int]]:
    """Each passage's document as a small integer (what ``collapse=doc`` groups by), and
    each document id's integer.

    Read from the ``doc_id`` rows of each segment's term table, in order (a lookup
    and a matcher per document took three times as long); done once, when a version
    is built (see ``build.py``), never in a request.
    """
    groups = np.zeros(reader.doc_count_all(), dtype=np.int32)
    numbers: dict[str, int] = {}
    for segment, base in reader.leaf_readers():
        if "doc_id" not in segment._terms.indexed_field_names():
            continue
        if isinstance(getattr(segment._terms, "_codec", None), ArrayCodec):
            # The field's rows of the term table, in order: no lookup or matcher per document.
            deleted = np.fromiter(segment.deleted_docs_set, dtype=np.int64) if segment.has_deletions() else None
            terms = segment._terms
            for key, entry in terms._tindex.items_from(terms._keycoder("doc_id", b"")):
                field, doc_id = terms._keydecoder(key)
                if field != "doc_id":
                    break
                ids = entry_arrays(terms, entry)[0].astype(np.int64)
                if deleted is not None:
                    ids = ids[~np.isin(ids, deleted)]
                groups[ids + base] = numbers.setdefault(_text(doc_id), len(numbers))
            continue
        for doc_id in segment.lexicon("doc_id"):
            number = numbers.setdefault(_text(doc_id), len(numbers))
            groups[np.fromiter(segment.postings("doc_id", doc_id).all_ids(), dtype=np.int64) + base] = number
    return groups, numbers


def _text(term: str | bytes) -> str:
    return term.decode("utf-8") if isinstance(term, bytes) else term


def corpus_order(groups: np.ndarray, numbers: dict[str, int], documents: Iterable[str]) -> np.ndarray:
    """Each passage's place in the corpus: by its document's place in ``documents`` (the
    corpus order), then by number (a document's passages are written together, in
    order). A version built anew has them in that order; one an incremental reindex
    appended to does not, and ties must still go as they would in a fresh build.
    ``groups`` and ``numbers`` are :func:`document_groups`'."""
    by_group = np.full(len(numbers), np.iinfo(np.int64).max, dtype=np.int64)
    for place, doc_id in enumerate(documents):
        number = numbers.get(doc_id)
        if number is not None:
            by_group[number] = place
    ranks = np.empty(len(groups), dtype=np.int32)
    numbered = np.arange(len(groups))
    ranks[np.lexsort((numbered, by_group[groups] if len(by_group) else numbered))] = numbered
    return ranks


def section_passages(reader: Any, section: str) -> np.ndarray:
    """The passages of ``section`` (their numbers, sorted): one posting list, read when a version opens."""
    found = [
        np.fromiter(segment.postings("section", section).all_ids(), dtype=np.int64) + base
        for segment, base in reader.leaf_readers()
        if (("section", section)) in segment
    ]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def live_mask(reader: Any) -> np.ndarray:
    """Per document, whether it is not deleted."""
    live = np.ones(reader.doc_count_all(), dtype=bool)
    for segment, base in reader.leaf_readers():
        deleted = list(segment.deleted_docs_set)
        if deleted:
            live[np.asarray(deleted, dtype=np.int64) + base] = False
    return live


def _decode(segment: Any, field: str, term: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, term frequencies) through Whoosh's matcher, one posting at a time:
    for segments written with another codec (Whoosh's default writer, as the
    tests comparing with Whoosh use); reindex writes only :class:`ArrayCodec` ones."""
    try:
        matcher = segment.postings(field, term)
    except TermNotFound:
        return None
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    ids: list[int] = []
    weights: list[float] = []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float64)
