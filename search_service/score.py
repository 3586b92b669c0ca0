"""Step 5a of the pipeline: BM25F scores of query terms, vectorized with NumPy.

Whoosh matches a query by walking a tree of matchers one posting at a time in
Python: on 10,000 passages a question of about 45 weighted terms took 40-55 ms
(p50), nearly all of it in ``collectors.collect_matches``. Here each term's posting
list is read once, block by block (array blocks, see :mod:`codec`), into two
arrays (document numbers and BM25F contributions); a query is then a handful of
array additions into a dense score vector, whatever the number of postings.

The formula and its statistics are Whoosh's ``BM25F``: idf
``log(doc_count_all / (df + 1)) + 1`` over the whole index, the one-byte field
lengths Whoosh stores, and the average field lengths of the version's manifest
(``index._check`` computes them from the stored lengths, so a merged index and
a fresh one agree, which Whoosh's own segment totals do not).
``tests/test_score.py`` checks every score against Whoosh's own scorer.

Decoded lists are kept per index version in a :class:`CostAwareCache`
bounded in bytes (``Settings.posting_cache_mb``), which evicts what is cheapest
to read again per byte it holds, least recently used first among equals.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.matching import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

from search_service.codec import ArrayCodec, term_arrays

# Whoosh stores each field length as one byte; this decodes all 256 at once.
_BYTE_TO_LENGTH = np.array([byte_to_length(i) for i in range(256)], dtype=np.float64)
# Bookkeeping bytes charged per cache entry on top of its arrays (the arrays'
# headers, the key, the cache's and its heap's entries).
_ENTRY_OVERHEAD = 400

Alternative = tuple[str, str, float]  # (field, term, boost)


@dataclass(frozen=True)
class Postings:
    """One term's matching passages and BM25F contributions (at boost 1)."""

    ids: np.ndarray  # int32 document numbers, ascending, deleted ones left out
    scores: np.ndarray  # float64
    df: int  # document frequency as Whoosh counts it (deleted documents included)

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.scores.nbytes + _ENTRY_OVERHEAD


_NOTHING = Postings(np.empty(0, np.int32), np.empty(0, np.float64), 0)


V = TypeVar("V")


class CostAwareCache(Generic[V]):
    """A cache bounded in bytes that evicts what is cheapest to make again per
    byte it holds: GreedyDual-Size (Cao and Irani, 1997).

    Each entry's priority is a floor plus its cost per byte, set when it is
    stored or used; the entry of lowest priority goes first, and its priority
    becomes the floor, so entries not used for a while sink below new ones.
    Among entries of equal cost per byte this is least recently used.

    Why not plain LRU: a posting list costs about 60 µs a segment to look up and
    decode whatever its length, plus a little per posting, so a short list is
    worth tens of times more per byte than a long one. Replaying the bench's
    queries at 100,000 passages (1,000 questions, 1,000 others, the first 1,000
    again) through a 128 MB cache, the third pass's misses cost 0.95 ms a query
    with LRU and 0.01 ms with this policy (0.51 ms at 96 MB).
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        # key -> [value, bytes, cost per byte, priority, tick of the last use]
        self._entries: dict[Hashable, list[Any]] = {}
        # One (priority, tick, key) per entry, as of when it was pushed: a use
        # only raises the entry's priority, and eviction pushes such an entry
        # back with its current one, so a use costs no heap operation.
        self._heap: list[tuple[float, int, Hashable]] = []
        self._ticks = itertools.count()  # the least recently used first among equal priorities
        self._floor = 0.0
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry[3] = self._floor + entry[2]
            entry[4] = next(self._ticks)
            return entry[0]

    def put(self, key: Hashable, value: V, size: int, cost: float) -> None:
        """Keep ``value`` (``size`` bytes, ``cost`` seconds to make again) unless it is already kept or too big."""
        if size > self.limit_bytes or size <= 0:
            return
        with self._lock:
            if key in self._entries:
                return
            entry = [value, size, cost / size, self._floor + cost / size, next(self._ticks)]
            self._entries[key] = entry
            heapq.heappush(self._heap, (entry[3], entry[4], key))
            self._bytes += size
            while self._bytes > self.limit_bytes:
                priority, tick, victim = heapq.heappop(self._heap)
                entry = self._entries[victim]
                if entry[4] != tick:  # used since it was pushed: back, at its current priority
                    heapq.heappush(self._heap, (entry[3], entry[4], victim))
                    continue
                del self._entries[victim]
                self._bytes -= entry[1]
                self._floor = priority

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"terms": len(self._entries), "bytes": self._bytes, "limit": self.limit_bytes}


class TermScorer:
    """BM25F contributions of single terms, and of weighted groups of them, in one index version.

    Build it once per opened version (it reads every scored field's lengths);
    pass each call the reader of the calling thread's searcher, since Whoosh
    readers share file positions.
    """

    def __init__(self, reader: Any, fields: Iterable[str], avg_lengths: dict[str, float],
                 k1: float, b: float, cache_bytes: int) -> None:
        self.doc_count = reader.doc_count_all()
        self.k1 = k1
        self.b = b
        self._norms: dict[str, np.ndarray] = {}
        # Fields no passage has (titles of a corpus without titles) match nothing:
        # no need to look their terms up, segment by segment, or score them at all.
        self.empty_fields = frozenset(name for name in fields if not reader.field_length(name))
        for name in fields:
            # Whoosh: avgfl = manifest value, else field total / doc_count_all, else 1.
            avg = avg_lengths.get(name) or (reader.field_length(name) / (self.doc_count or 1)) or 1
            # The length part of BM25's denominator, per document, computed once.
            self._norms[name] = k1 * ((1 - b) + b * field_lengths(reader, name) / avg)
        self.live = np.ones(self.doc_count, dtype=bool)
        for segment, base in reader.leaf_readers():
            deleted = list(segment.deleted_docs_set)
            if deleted:
                self.live[np.asarray(deleted, dtype=np.int64) + base] = False
        self.has_deletions = not self.live.all()
        self._cache: CostAwareCache[Postings] = CostAwareCache(cache_bytes)

    # -- single terms -----------------------------------------------------------

    def postings(self, reader: Any, field: str, term: str, boost: float = 1.0) -> Postings:
        """The term's passages and scores times ``boost``, from the cache or decoded now.

        The boost is part of the cache key: a term is nearly always asked with
        its field's weight, so the scaled scores are computed once, not per query.
        """
        if field in self.empty_fields:
            return _NOTHING
        key = (field, term, boost)
        found = self._cache.get(key)
        if found is not None:
            return found
        began = time.perf_counter()
        found = self._read(reader, field, term)
        if boost != 1.0:
            found = Postings(found.ids, found.scores * boost, found.df)
        self._cache.put(key, found, found.nbytes, time.perf_counter() - began)
        return found

    def _read(self, reader: Any, field: str, term: str) -> Postings:
        norms = self._norms.get(field)
        if norms is None:
            raise ValueError(f"field {field!r} is not scored")
        parts = []
        tbytes = term.encode("utf-8")
        for segment, base in reader.leaf_readers():
            # Deleted documents are read too, and masked with self.live below.
            if isinstance(getattr(segment._terms, "_codec", None), ArrayCodec):
                found = term_arrays(segment._terms, field, tbytes)
            else:
                found = _decode(segment, field, term)
            if found is not None:
                parts.append((found, base))
        if not parts:
            return _NOTHING
        if len(parts) == 1:
            (ids, tf), base = parts[0]
            ids = ids.astype(np.int32)  # a copy: the cache must not hold the file's bytes
            if base:
                ids += base
        else:
            ids = np.concatenate([i.astype(np.int32) + base for (i, _), base in parts])
            tf = np.concatenate([t for (_, t), _ in parts])
        tf = tf.astype(np.float64)
        df = len(ids)
        if self.has_deletions:
            keep = self.live[ids]
            ids, tf = ids[keep], tf[keep]
        idf = math.log(self.doc_count / (df + 1)) + 1
        scores = tf * (idf * (self.k1 + 1))
        scores /= tf + norms[ids]
        return Postings(ids, scores, df)

    # -- groups of terms -------------------------------------------------------

    def best_of(self, reader: Any, alternatives: Sequence[Alternative]) -> Postings:
        """The weighted scores of one query part: one term, or the best of several
        spellings of a word (a synonym group counts once, at its best match).

        ``df`` is the largest of the alternatives', which decides whether the
        part is selective.
        """
        if len(alternatives) == 1:  # most parts: one term in one field
            field, term, boost = alternatives[0]
            found = self.postings(reader, field, term, boost)
            return found if len(found.ids) else _NOTHING
        found = [self.postings(reader, f, t, boost) for f, t, boost in alternatives]
        found = [p for p in found if len(p.ids)]
        if len(found) <= 1:
            return found[0] if found else _NOTHING
        df = max(p.df for p in found)
        best = np.zeros(self.doc_count, dtype=np.float64)
        for p in found:  # ids are unique within one list
            best[p.ids] = np.maximum(best[p.ids], p.scores)
        matched = np.zeros(self.doc_count, dtype=bool)
        for p in found:
            matched[p.ids] = True
        ids = np.flatnonzero(matched).astype(np.int32)
        return Postings(ids, best[ids], df)

    def cache_info(self) -> dict[str, int]:
        return self._cache.info()


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
        lengths[base:base + len(codes)] = _BYTE_TO_LENGTH[codes]
    return lengths


def _decode(segment: Any, field: str, term: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, term frequencies) through Whoosh's matcher, one posting at a time:
    for segments written with another codec (Whoosh's default writer, as
    tests/test_score.py uses); reindex writes only :class:`ArrayCodec` ones."""
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
