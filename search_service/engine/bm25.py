"""BM25F over posting arrays, for engines that hand us their postings (Whoosh).

Whoosh matches a query by walking a tree of matchers one posting at a time in
Python. Here each term's posting list is read once, into two arrays (document
numbers and BM25F contributions); a query is then a handful of array
additions into a dense score vector, whatever the number of postings.

The formula is Whoosh's ``BM25F`` (``tests/engine/whoosh/test_bm25_vs_whoosh.py``
checks every score against Whoosh's own scorer): idf ``log(N / (df + 1)) + 1``,
the field lengths the engine stores, and the average field lengths of the
version's manifest. Unlike Whoosh, N and df count only live passages: a
version whose segments still hold deleted passages (an incremental reindex
that did not merge them away) scores exactly as a version built anew, and ties
go to the passage earlier in the corpus (``order``), not the one written first.

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
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from search_service.engine.base import Ranked
from search_service.engine.plan import Alternative, Constraint, Part, QueryPlan

# Bookkeeping bytes charged per cache entry on top of its arrays' data: the arrays'
# objects, the Postings, the key, the cache's entry and its heap's, their share of
# the table (tests/engine/test_bm25.py measures it).
_ENTRY_OVERHEAD = 800


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


class _Entry(Generic[V]):
    """A cache entry: its value and size, its cost per byte, its priority, its last use."""

    __slots__ = ("cost", "last", "priority", "size", "value")

    def __init__(self, value: V, size: int, cost: float, priority: float, last: int) -> None:
        self.value, self.size, self.cost, self.priority, self.last = value, size, cost, priority, last


class CostAwareCache(Generic[V]):
    """A cache bounded in bytes that evicts what is cheapest to make again per
    byte it holds: GreedyDual-Size (Cao and Irani, 1997).

    Each entry's priority is a floor plus its cost per byte, set when it is
    stored or used; the entry of lowest priority goes first, and its priority
    becomes the floor, so entries not used for a while sink below new ones.
    Among entries of equal cost per byte this is least recently used.

    Why not plain LRU: looking a posting list up costs about as much whatever
    its length, so a short list is worth many times more per byte than a
    long one, and LRU thrashed on the benchmark's cyclic queries (``CHANGELOG.md``,
    "Posting cache by cost", has the measurements).
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._entries: dict[Hashable, _Entry[V]] = {}
        # One (priority, tick, key) per entry, as of when it was pushed: a use
        # only raises the entry's priority, and eviction pushes such an entry
        # back with its current one, so a use costs no heap operation.
        self._heap: list[tuple[float, int, Hashable]] = []
        self._ticks = itertools.count()  # the least recently used first among equal priorities
        self._floor = 0.0
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            entry.priority = self._floor + entry.cost
            entry.last = next(self._ticks)
            return entry.value

    def put(self, key: Hashable, value: V, size: int, cost: float) -> None:
        """Keep ``value`` (``size`` bytes, ``cost`` seconds to make again) unless it is already kept or too big."""
        if size > self.limit_bytes or size <= 0:
            return
        with self._lock:
            if key in self._entries:
                return
            entry = _Entry(value, size, cost / size, self._floor + cost / size, next(self._ticks))
            self._entries[key] = entry
            heapq.heappush(self._heap, (entry.priority, entry.last, key))
            self._bytes += size
            while self._bytes > self.limit_bytes:
                priority, tick, victim = heapq.heappop(self._heap)
                entry = self._entries[victim]
                if entry.last != tick:  # used since it was pushed: back, at its current priority
                    heapq.heappush(self._heap, (entry.priority, entry.last, victim))
                    continue
                del self._entries[victim]
                self._bytes -= entry.size
                self._floor = priority

    def info(self) -> dict[str, int]:
        with self._lock:
            return {
                "terms": len(self._entries),
                "bytes": self._bytes,
                "limit": self.limit_bytes,
                "hits": self.hits,
                "misses": self.misses,
            }


class PostingSource(Protocol):
    """What an engine gives the ranker: one reader's view of an index version."""

    def term_postings(self, field: str, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(document numbers ascending, term frequencies) of ``term`` in ``field``,
        deleted passages included; None when no passage has it."""

    def matching(self, constraint: Constraint) -> np.ndarray:
        """The document numbers of the passages matching ``constraint``."""


class TermScorer:
    """BM25F contributions of single terms, and of weighted groups of them, in one index version.

    Build it once per opened version from each scored field's lengths per
    passage and average length; each call reads postings through the calling
    thread's :class:`PostingSource`.
    """

    def __init__(
        self,
        doc_count: int,
        lengths: Mapping[str, np.ndarray],
        avg_lengths: Mapping[str, float],
        live: np.ndarray,
        k1: float,
        b: float,
        cache_bytes: int,
    ) -> None:
        self.doc_count = doc_count  # passages written, deleted ones included: the size of every per-passage array
        self.live_count = int(np.count_nonzero(live))  # passages searched: BM25's N
        self.k1 = k1
        self.b = b
        self._norms: dict[str, np.ndarray] = {}
        # Fields no passage has (titles of a corpus without titles) match nothing:
        # no need to look their terms up, segment by segment, or score them at all.
        self.empty_fields = frozenset(name for name, lens in lengths.items() if not lens.any())
        for name, lens in lengths.items():
            # The length part of BM25's denominator, per document, computed once.
            self._norms[name] = k1 * ((1 - b) + b * lens / avg_lengths[name])
        self.live = live
        self.has_deletions = not live.all()
        self._cache: CostAwareCache[Postings] = CostAwareCache(cache_bytes)

    # -- single terms -----------------------------------------------------------

    def postings(self, source: PostingSource, field: str, term: str, boost: float = 1.0) -> Postings:
        """The term's passages and scores times ``boost``, from the cache or decoded now.

        The boost is part of the cache key: a term is nearly always asked with
        its field's weight, so the scaled scores are computed once, not per query.
        """
        key = (field, term, boost)
        found = self._cache.get(key)
        return self._keep(source, key) if found is None else found

    def _keep(self, source: PostingSource, key: Alternative) -> Postings:
        """The postings of ``key`` (field, term, boost) read now, and kept in the cache
        (unless no passage has the term)."""
        field, term, boost = key
        if field in self.empty_fields:
            return _NOTHING
        began = time.perf_counter()
        found = self._read(source, field, term)
        if found is _NOTHING:
            # Not kept: a term no passage holds is cheap to look up again, and a client
            # asking for many would otherwise fill the cache and evict real postings.
            return found
        if boost != 1.0:
            found = Postings(found.ids, found.scores * boost, found.df)
        self._cache.put(key, found, found.nbytes, time.perf_counter() - began)
        return found

    def _read(self, source: PostingSource, field: str, term: str) -> Postings:
        norms = self._norms.get(field)
        if norms is None:
            raise ValueError(f"field {field!r} is not scored")
        found = source.term_postings(field, term)
        if found is None:
            return _NOTHING
        ids, tf = found
        tf = tf.astype(np.float64)
        if self.has_deletions:
            keep = self.live[ids]
            ids, tf = ids[keep], tf[keep]
        df = len(ids)
        if not df:  # every passage holding it deleted (perhaps every passage: N = 0)
            return _NOTHING
        idf = math.log(self.live_count / (df + 1)) + 1
        scores = tf * (idf * (self.k1 + 1))
        scores /= tf + norms[ids]
        return Postings(ids, scores, df)

    # -- groups of terms -------------------------------------------------------

    def best_of(self, source: PostingSource, alternatives: Part) -> Postings:
        """The weighted scores of one query part: one term, or the best of several
        spellings of a word (a synonym group counts once, at its best match).

        ``df`` is the largest of the alternatives', which decides whether the
        part is selective.
        """
        if len(alternatives) == 1:  # most parts: one term in one field; the cache's key as it is
            found = self._cache.get(alternatives[0])
            if found is None:
                found = self._keep(source, alternatives[0])
            return found if len(found.ids) else _NOTHING
        lists = [self.postings(source, f, t, boost) for f, t, boost in alternatives]
        lists = [p for p in lists if len(p.ids)]
        if len(lists) <= 1:
            return lists[0] if lists else _NOTHING
        df = max(p.df for p in lists)
        best = np.zeros(self.doc_count, dtype=np.float64)
        for p in lists:  # ids are unique within one list
            best[p.ids] = np.maximum(best[p.ids], p.scores)
        matched = np.zeros(self.doc_count, dtype=bool)
        for p in lists:
            matched[p.ids] = True
        ids = np.flatnonzero(matched).astype(np.int32)
        return Postings(ids, best[ids], df)

    def cache_info(self) -> dict[str, int]:
        return self._cache.info()


NOTHING_RANKED = Ranked(np.empty(0, np.int64), np.empty(0, np.float64), 0)


def rank(
    scorer: TermScorer,
    source: PostingSource,
    plan: QueryPlan,
    limit: int,
    groups: np.ndarray | None,
    common_ratio: float,
    damped: tuple[np.ndarray, float] | None = None,
    order: np.ndarray | None = None,
) -> Ranked:
    """The best ``limit`` passages of ``plan`` (with ``groups``, the best one of each group;
    ``damped``: passages whose scores are multiplied by a factor, the related section's;
    ``order``: each passage's place in the corpus, which breaks ties, else its number).

    Every part adds its weighted BM25F scores into one vector. Candidates
    are split by how selective the parts are: a passage must match at least
    one selective part (in at most ``common_ratio`` of the passages), and
    common parts only add to the score of passages found that way — the
    ranking a plain disjunction gives, minus the long tail of passages that
    share only a common word with the query. When that finds fewer passages
    than asked for, every matching passage counts, so recall is never lost.
    Ties go to the earlier passage.
    """
    if not plan.parts and plan.must is None:
        return NOTHING_RANKED
    scores, selective, common = _scored(scorer, source, plan, common_ratio)
    if scores is None:
        return NOTHING_RANKED  # no term of the query is in the index
    if damped is not None and len(damped[0]):
        scores[damped[0]] *= damped[1]

    allowed = _allowed(scorer, source, plan)
    matched: np.ndarray
    if plan.must is not None:
        assert allowed is not None  # a required clause always makes a mask
        matched = allowed
        docs = np.flatnonzero(allowed)  # the required clauses decide; every part only scores
        top, _ = _top(docs, scores[docs], limit, groups, order)
    else:
        top = _best_of_tiers(selective, common, scores, limit, allowed, groups, order)
        # The total counts every matching passage, also when the best ones were found among
        # the selective parts' alone: a page count from a lower bound would hide pages.
        matched = scores > 0 if allowed is None else (scores > 0) & allowed
    total = int(np.count_nonzero(matched)) if groups is None else int(np.count_nonzero(np.bincount(groups[matched])))
    return Ranked(top, scores[top], total)


def _scored(
    scorer: TermScorer, source: PostingSource, plan: QueryPlan, common_ratio: float
) -> tuple[np.ndarray | None, list[np.ndarray], list[np.ndarray]]:
    """Every passage's score (one pass sums every part's contribution, in part order), and
    the parts' matching passages, selective and common; no scores when no part matched
    and nothing is required."""
    n = scorer.doc_count
    found_ids: list[np.ndarray] = []
    found_scores: list[np.ndarray] = []
    selective: list[np.ndarray] = []
    common: list[np.ndarray] = []
    common_df = common_ratio * scorer.live_count
    for alternatives in plan.parts:
        found = scorer.best_of(source, alternatives)
        if len(found.ids):
            found_ids.append(found.ids)
            found_scores.append(found.scores)
            (common if found.df > common_df else selective).append(found.ids)
    if not found_ids:
        return (None if plan.must is None else np.zeros(n, dtype=np.float64)), selective, common
    return np.bincount(np.concatenate(found_ids), np.concatenate(found_scores), minlength=n), selective, common


def _allowed(scorer: TermScorer, source: PostingSource, plan: QueryPlan) -> np.ndarray | None:
    """The passages the plan's constraints (and deletions) admit, as a mask; None: all."""
    n = scorer.doc_count
    allowed = scorer.live if scorer.has_deletions else None
    for constraint, wanted in ((plan.must, True), (plan.must_not, False), (plan.filter, True)):
        if constraint is not None:
            mask = np.zeros(n, dtype=bool)
            mask[source.matching(constraint)] = True
            mask = mask if wanted else ~mask
            allowed = mask if allowed is None else allowed & mask
    return allowed


def _best_of_tiers(
    selective: list[np.ndarray],
    common: list[np.ndarray],
    scores: np.ndarray,
    limit: int,
    allowed: np.ndarray | None,
    groups: np.ndarray | None,
    order: np.ndarray | None,
) -> np.ndarray:
    """The best ``limit`` passages among the selective parts' lists; among every part's
    when those hold too few (common lists are long: they count only then)."""
    tiers = [selective, selective + common] if selective and common else [selective or common]
    for lists in tiers:
        if groups is None:
            top, count = _best_listed(lists, scores, limit, allowed, order)
        else:
            docs = _union(lists, len(scores))
            if allowed is not None:
                docs = docs[allowed[docs]]
            top, count = _top(docs, scores[docs], limit, groups, order)
        if count >= limit:
            break
    return top


def _union(id_lists: list[np.ndarray], n: int) -> np.ndarray:
    """The sorted distinct ids of ``id_lists`` (a mask beats np.unique's sort here;
    one scatter of the joined lists beats one per list)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.concatenate(id_lists)] = True
    return np.flatnonzero(mask)


def _best_listed(
    id_lists: list[np.ndarray], scores: np.ndarray, limit: int, allowed: np.ndarray | None, order: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """:func:`_top` of the distinct ids of ``id_lists`` (that ``allowed`` allows), without
    forming their union over every document: an id is in at most ``len(id_lists)``
    lists, so the best ``limit * len(id_lists)`` entries of the joined lists hold the
    best ``limit`` distinct ids, ties included. How many there are is exact below
    ``limit``, else at least ``limit``."""
    ids = np.concatenate(id_lists) if len(id_lists) > 1 else id_lists[0]
    if allowed is not None:
        ids = ids[allowed[ids]]
    enough = limit * len(id_lists)
    if len(ids) > enough:
        found = scores[ids]
        ids = ids[found >= -np.partition(-found, enough - 1)[enough - 1]]
    if len(id_lists) > 1:
        ids = _union([ids], len(scores)) if len(ids) > len(scores) // 16 else np.unique(ids)
    return _top(ids, scores[ids], limit, None, order)


def _top(
    docs: np.ndarray, scores: np.ndarray, limit: int, groups: np.ndarray | None, order: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """The ``limit`` best of ``docs`` by score, then place in the corpus (``order``, else
    document number); and how many there are. With ``groups``, only the best passage
    of each group counts.
    """
    if groups is not None:
        ranked = docs[np.lexsort((docs if order is None else order[docs], -scores))]
        _, first = np.unique(groups[ranked], return_index=True)
        return ranked[np.sort(first)[:limit]], len(first)
    total = len(docs)
    if total > limit:
        # Everything scoring at least the limit-th best score (ties included) is sorted.
        threshold = -np.partition(-scores, limit - 1)[limit - 1]
        keep = scores >= threshold
        docs, scores = docs[keep], scores[keep]
    return docs[np.lexsort((docs if order is None else order[docs], -scores))[:limit]], total
