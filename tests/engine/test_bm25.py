"""The ranker: its candidates and top passages against a brute-force ranking, and its
posting cache (bounded in bytes, evicting what is cheapest to read again)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.engine import plan as qp
from search_service.engine.bm25 import CostAwareCache, TermScorer, rank


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
@given(
    st.lists(st.tuples(st.integers(0, 15), st.integers(1, 60), st.floats(1e-6, 1.0), st.booleans()), max_size=200),
    st.integers(1, 150),
)
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


class ListSource:
    """A PostingSource over posting lists given as {term: {passage: count}} in one field."""

    def __init__(self, lists: dict[str, dict[int, int]]) -> None:
        self.lists = lists

    def term_postings(self, field: str, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        found = self.lists.get(term)
        if not found:
            return None
        ids = sorted(found)
        return np.array(ids, dtype=np.int32), np.array([found[i] for i in ids], dtype=np.uint8)

    def matching(self, constraint: qp.Constraint) -> np.ndarray:
        assert isinstance(constraint, qp.HasTerm)
        return np.array(sorted(self.lists.get(constraint.text, {})), dtype=np.int64)


@st.composite
def ranking_cases(draw):
    n = draw(st.integers(1, 40))
    terms = [f"t{i}" for i in range(draw(st.integers(1, 6)))]
    lists = {t: draw(st.dictionaries(st.integers(0, n - 1), st.integers(1, 3), max_size=n)) for t in terms}
    # A part is one term or the best of two (a synonym group).
    parts = [
        tuple(
            ("body", t, draw(st.sampled_from([1.0, 0.5])))
            for t in draw(st.lists(st.sampled_from(terms), min_size=1, max_size=2, unique=True))
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    return {
        "n": n,
        "lists": lists,
        "parts": parts,
        "lengths": np.array(draw(st.lists(st.integers(1, 30), min_size=n, max_size=n)), dtype=np.float64),
        "live": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)) if draw(st.booleans()) else [True] * n),
        "must": draw(st.sampled_from([None, *terms])),
        "must_not": draw(st.sampled_from([None, *terms])),
        "groups": np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))) if draw(st.booleans()) else None,
        "order": np.array(draw(st.permutations(range(n)))),
        "limit": draw(st.integers(1, 8)),
        "common_ratio": draw(st.sampled_from([0.0, 0.2, 0.5, 1.0])),
    }


def brute_force(case, scorer, source):
    """The ranking ``rank`` documents, passage by passage in plain Python."""
    n, live = case["n"], case["live"]
    scores = [0.0] * n
    selective, common = set(), set()
    for part in case["parts"]:
        found = scorer.best_of(source, part)
        for d, s in zip(found.ids.tolist(), found.scores.tolist()):
            scores[d] += s
        (common if found.df > case["common_ratio"] * scorer.live_count else selective).update(found.ids.tolist())
    matched = [d for d in range(n) if scores[d] > 0 or case["must"]]
    if (not case["parts"] and case["must"] is None) or not matched:
        return [], [], 0
    must = set(case["lists"].get(case["must"], {})) if case["must"] else None
    must_not = set(case["lists"].get(case["must_not"], {})) if case["must_not"] else set()
    allowed = {d for d in range(n) if live[d] and d not in must_not and (must is None or d in must)}
    groups = case["groups"]

    def best(docs):
        ranked = sorted(docs, key=lambda d: (-scores[d], case["order"][d]))
        if groups is not None:
            seen: set[int] = set()
            ranked = [d for d in ranked if not (groups[d] in seen or seen.add(groups[d]))]
        return ranked

    if must is not None:
        top = best(allowed)
    else:
        tiers = [selective, selective | common] if selective and common else [selective or common]
        for docs in tiers:
            top = best(docs & allowed)
            if len(top) >= case["limit"]:
                break
    hits = {d for d in range(n) if d in allowed and (scores[d] > 0 or must is not None)}
    total = len(hits) if groups is None else len({groups[d] for d in hits})
    top = top[: case["limit"]]
    return top, [scores[d] for d in top], total


@hsettings(max_examples=400, deadline=None)
@given(ranking_cases())
def test_rank_finds_the_passages_a_brute_force_ranking_finds(case):
    """Candidates (selective parts first, every part when they find too few), constraints,
    deletions, one passage per group, ties by place in the corpus: exactly, scores too."""
    n = case["n"]
    source = ListSource(case["lists"])
    scorer = TermScorer(
        n,
        {"body": case["lengths"]},
        {"body": float(case["lengths"].mean())},
        case["live"],
        k1=1.2,
        b=0.75,
        cache_bytes=1 << 20,
    )
    plan = qp.QueryPlan(
        case["parts"],
        qp.HasTerm("body", case["must"]) if case["must"] else None,
        qp.HasTerm("body", case["must_not"]) if case["must_not"] else None,
        None,
        set(),
    )
    ranked = rank(scorer, source, plan, case["limit"], case["groups"], case["common_ratio"], order=case["order"])
    top, scores, total = brute_force(case, scorer, source)
    assert list(ranked.refs) == top
    assert list(ranked.scores) == scores
    assert ranked.total == total


def _scorer(n: int, cache_bytes: int) -> TermScorer:
    lengths = np.full(n, 5.0)
    return TermScorer(n, {"body": lengths}, {"body": 5.0}, np.ones(n, dtype=bool), 1.2, 0.75, cache_bytes)


def test_absent_terms_take_no_room_in_the_posting_cache():
    """A term no passage holds is looked up again when asked again: a client sending rare
    characters neither grows the cache nor evicts the postings kept (issue 38, 5)."""
    scorer = _scorer(10, 1 << 20)
    source = ListSource({"在": {1: 2, 3: 1}})
    kept = scorer.postings(source, "body", "在")
    for i in range(3000):
        assert not len(scorer.postings(source, "body", chr(0xE000 + i)).ids)
    info = scorer.cache_info()
    assert (info["terms"], info["bytes"]) == (1, kept.nbytes)


def test_a_cache_entry_is_charged_at_least_what_it_costs():
    """What an entry of the posting cache holds beyond its arrays (their objects, the key,
    the cache's entry, its heap entry, its share of the table), measured: the bound in
    bytes holds for many short lists."""
    import gc
    import tracemalloc

    n = 4000
    source = ListSource({f"词{i}": {i % 10: 1} for i in range(n)})
    scorer = _scorer(10, 1 << 30)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    data = 0
    for i in range(n):
        found = scorer.postings(source, "body", f"词{i}")
        data += found.ids.nbytes + found.scores.nbytes
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert scorer.cache_info()["bytes"] >= grown, (scorer.cache_info()["bytes"] / n, grown / n)


@given(
    st.lists(st.dictionaries(st.integers(0, 60), st.integers(1, 3), min_size=1, max_size=30), min_size=2, max_size=4)
)
def test_a_synonym_group_scores_each_passage_at_its_best_alternative(lists):
    """The best of several spellings, per passage, over the union of their passages; the
    group's df the largest of theirs (the brute-force ranking takes best_of as given)."""
    source = ListSource({f"t{i}": d for i, d in enumerate(lists)})
    scorer = _scorer(61, 1 << 20)
    part = tuple(("body", f"t{i}", 1.0 if i % 2 else 0.8) for i in range(len(lists)))
    found = scorer.best_of(source, part)
    singles = [scorer.postings(source, f, t, w) for f, t, w in part]
    best: dict[int, float] = {}
    for p in singles:
        for d, s in zip(p.ids.tolist(), p.scores.tolist()):
            best[d] = max(best.get(d, 0.0), s)
    assert found.ids.tolist() == sorted(best)
    assert found.scores.tolist() == [best[d] for d in sorted(best)]
    assert found.df == max(p.df for p in singles)
