"""Each index version's recent results, for repeated requests."""

from __future__ import annotations

import threading
from collections import OrderedDict

from search_service.search.request import SearchRequest
from search_service.search.results import SearchResult


class ResultCache:
    """The last results of one index version, by request (least recently used dropped first).

    Sites and chatbots repeat their popular queries; a repeated request is
    answered without ranking or highlighting again, as Solr's
    ``queryResultCache`` does. An index version never changes, so entries
    never go stale: a new version starts with an empty cache.

    ``size`` counts pages of up to :data:`HITS_PER_ENTRY` hits: a result of
    100 hits takes ten places. Counting results alone would let ``size=100``
    requests hold ten times the memory the default setting was sized for.
    """

    HITS_PER_ENTRY = 10

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._entries: OrderedDict[SearchRequest, tuple[SearchResult, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request: SearchRequest) -> SearchResult | None:
        if not self.size:
            return None
        with self._lock:
            found = self._entries.get(request)
            if found is None:
                return None
            self._entries.move_to_end(request)
            return found[0]

    def put(self, request: SearchRequest, result: SearchResult) -> None:
        weight = max(1, -(-len(result.hits) // self.HITS_PER_ENTRY))
        if weight > self.size:
            return
        with self._lock:
            old = self._entries.pop(request, None)
            if old is not None:
                self.used -= old[1]
            self._entries[request] = (result, weight)
            self.used += weight
            while self.used > self.size:
                self.used -= self._entries.popitem(last=False)[1][1]
