"""The planner's bound on a long query's scored words (issue 38, 9)."""

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.fields import Ranking
from search_service.search.planner import Planner
from search_service.text.analysis import PAIR_JOIN, AnalysisConfig, get_analysis
from search_service.text.synonyms import Synonyms

ANALYSIS = get_analysis(AnalysisConfig())
COMMON = ["我们", "可以", "进行", "工作", "问题", "时候", "发展", "国家", "社会", "经济", "方面", "情况"]
RARE = ["蝾螈", "琵琶湖", "甲骨文", "醍醐", "饕餮"]


def _planner(max_terms: int = 32) -> Planner:
    return Planner(ANALYSIS, Synonyms([]), Ranking(), max_terms=max_terms)


def _scored_words(plan) -> set[str]:
    return {t for alternatives in plan.parts for f, t, _ in alternatives if f in ("body", "title", "heading")}


def test_a_long_query_scores_its_rarest_words_and_their_grams_and_pairs_only():
    query = "，".join(COMMON * 2 + RARE + ["克苏鲁"])  # 12 common words, 5 rare ones, one jieba does not know
    bounded = _planner(max_terms=6).plan(query)
    kept = _scored_words(bounded)
    dropped = {w.text for w in ANALYSIS.words(query)} - kept
    assert len(kept) == 6 and not kept & set(COMMON)
    assert max(map(ANALYSIS.word_frequency, kept)) <= min(map(ANALYSIS.word_frequency, dropped))
    for alternatives in bounded.parts:
        for field, term, _ in alternatives:
            if field == "grams":
                assert any(term in w for w in kept), term
            if PAIR_JOIN in term:
                assert all(half in kept for half in term.split(PAIR_JOIN)), term
    assert bounded.marks <= {*kept, *(g for g in bounded.marks if any(g in w for w in kept))}
    whole = _planner(max_terms=100).plan(query)
    assert len(bounded.parts) < len(whole.parts) / 2


def test_constraints_keep_every_word_of_a_long_query():
    words = " ".join(COMMON)
    plan = _planner(max_terms=3).plan(f'{words} +蝾螈 -饕餮 "国家 发展"')
    assert "蝾螈" in str(plan.must) and "国家" in str(plan.must) and "饕餮" in str(plan.must_not)


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(COMMON + RARE), min_size=1, max_size=12))
def test_a_query_within_the_bound_plans_as_without_one(words):
    query = "".join(words)
    distinct = {w.text for w in ANALYSIS.words(query)}
    assert _planner(max_terms=len(distinct)).plan(query) == _planner(max_terms=1000).plan(query)
    if len(distinct) > 1:
        assert len(_scored_words(_planner(max_terms=len(distinct) - 1).plan(query))) == len(distinct) - 1
