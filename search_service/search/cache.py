"""Each index version's recent results, for repeated requests."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

from search_service.search.request import SearchRequest
from search_service.search.results import SearchResult


def result_bytes(result: SearchResult) -> int:
    """About what a result holds in memory: its hits' strings and match lists, and
    the objects around them. Long passages and titles count for what they are."""
    size = 600  # the result, its request key and the cache's entry
    for h in result.hits:
        size += (
            400
            + sys.getsizeof(h.text)
            + sys.getsizeof(h.highlight)
            + sys.getsizeof(h.title)
            + sys.getsizeof(h.heading)
            + sys.getsizeof(h.passage_id)
            + sys.getsizeof(h.doc_id)
            + sys.getsizeof(h.source)
            + sys.getsizeof(h.title_highlight)
            + sys.getsizeof(h.heading_highlight)
            + 100 * (len(h.matches) + len(h.title_matches) + len(h.heading_matches))
            + 200 * len(h.metadata)
        )
    return size


class ResultCache:
    """The last results of one index version, by request (least recently used dropped first).

    Sites and chatbots repeat their popular queries; a repeated request is
    answered without ranking or highlighting again, as Solr's
    ``queryResultCache`` does. An index version never changes, so entries
    never go stale: a new version starts with an empty cache.

    Bounded in bytes (:func:`result_bytes`), not in results: a result of 100
    hits, or of hits with long passages, holds many times what a short one does.
    """

    def __init__(self, limit_bytes: int, weigh: Callable[[SearchResult], int] = result_bytes) -> None:
        self.limit_bytes = limit_bytes
        self.used = 0
        self._weigh = weigh
        self._entries: OrderedDict[SearchRequest, tuple[SearchResult, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, request: SearchRequest) -> SearchResult | None:
        if not self.limit_bytes:
            return None
        with self._lock:
            found = self._entries.get(request)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(request)
            return found[0]

    def put(self, request: SearchRequest, result: SearchResult) -> None:
        if not self.limit_bytes:
            return
        weight = self._weigh(result)
        if weight > self.limit_bytes:
            return
        with self._lock:
            old = self._entries.pop(request, None)
            if old is not None:
                self.used -= old[1]
            self._entries[request] = (result, weight)
            self.used += weight
            while self.used > self.limit_bytes:
                self.used -= self._entries.popitem(last=False)[1][1]
