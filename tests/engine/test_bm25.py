"""The ranker's posting cache: bounded in bytes, evicting what is cheapest to read again."""

from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from search_service.engine.bm25 import CostAwareCache


def test_the_cache_evicts_the_cheapest_per_byte_first_and_the_least_recent_among_equals():
    cache = CostAwareCache(100)
    cache.put("long", "L", 60, cost=0.6)  # 0.01 a byte
    cache.put("short", "S", 40, cost=4.0)  # 0.1 a byte
    cache.put("new", "N", 40, cost=4.0)  # over budget: the long list goes, although used more recently
    assert cache.get("long") is None and cache.get("short") == "S" and cache.get("new") == "N"
    cache.get("short")  # now "new" is the least recently used of two equals
    cache.put("newer", "W", 40, cost=4.0)
    assert cache.get("new") is None and cache.get("short") == "S" and cache.get("newer") == "W"
    assert cache.info() == {"terms": 2, "bytes": 80, "limit": 100, "hits": 5, "misses": 2}


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(1, 60), st.floats(1e-6, 1.0), st.booleans()), max_size=200),
       st.integers(1, 150))
def test_the_cache_keeps_what_was_put_within_its_budget(ops, limit):
    cache: CostAwareCache[tuple[int, int]] = CostAwareCache(limit)
    sizes: dict[int, int] = {}
    for key, size, cost, read in ops:
        if read:
            found = cache.get(key)
            assert found is None or found == (key, sizes[key])
        else:
            if cache.get(key) is None:
                sizes[key] = size
            cache.put(key, (key, sizes[key]), sizes[key], cost)
        info = cache.info()
        kept = [k for k in sizes if cache._entries.get(k) is not None]
        assert info["bytes"] == sum(sizes[k] for k in kept) <= limit and info["terms"] == len(kept)
