"""Highlight spans and snippet windows."""

import re

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.fields import Ranking
from search_service.search.highlight import _NOT_WORD, Marker, merge_spans, render, snippet_window
from search_service.search.planner import Planner
from search_service.text.analysis import AnalysisConfig, bigrams, get_analysis
from search_service.text.synonyms import Synonyms
from search_service.text.syntax import parse_query

ANALYSIS = get_analysis(AnalysisConfig(userdict=("医保卡 2000 n",)))
PLANNER = Planner(ANALYSIS, Synonyms([]), Ranking())


def reference_window(length, matches, window):
    """The obvious quadratic search that snippet_window must agree with."""
    if length <= window or not matches:
        return 0, min(length, window)
    best, best_cover = (0, window), -1
    for m_start, _ in matches:
        start = max(0, min(m_start - window // 8, length - window))
        end = start + window
        cover = sum(max(0, min(e, end) - max(s, start)) for s, e in matches)
        if cover > best_cover:
            best, best_cover = (start, end), cover
    return best


spans = st.lists(st.tuples(st.integers(0, 400), st.integers(1, 12)), max_size=40)


@hsettings(max_examples=300, deadline=None)
@given(spans, st.integers(1, 200))
def test_snippet_window_agrees_with_the_quadratic_search(raw, window):
    matches = merge_spans((s, s + n) for s, n in raw)
    length = max([e for _, e in matches], default=0) + 20
    assert snippet_window(length, matches, window) == reference_window(length, matches, window)


def test_render_marks_and_escapes_slices_of_the_original():
    text = "<b>醫保卡</b>被鎖了"
    assert render(text, [[3, 6], [10, 12]]) == "&lt;b&gt;<mark>醫保卡</mark>&lt;/b&gt;<mark>被鎖</mark>了"
    assert render("一二三四五六七八九十", [[8, 10]], window=4) == "…七八<mark>九十</mark>"


def reference_matches(norm, terms):
    """The obvious loop: every occurrence of every term, by str.find."""
    spans = []
    for term in set(terms):
        if not term:
            continue
        start = norm.text.find(term)
        while start != -1:
            spans.append(norm.span(start, start + len(term)))
            start = norm.text.find(term, start + 1)
    return merge_spans(spans)


@hsettings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="医保卡密碼码锁鎖aA.(㎏𠀀", max_size=30),
    st.lists(st.text(alphabet="医保卡密码锁a.(kg𠀀", min_size=0, max_size=4), max_size=6),
)
def test_marker_finds_what_a_find_loop_finds(text, terms):
    from search_service.search.highlight import Marker
    from search_service.text.normalize import normalize

    norm = normalize(text)
    assert Marker(terms).matches(norm) == reference_matches(norm, terms)


@hsettings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="医保卡密碼码锁鎖aA.(㎏𠀀", max_size=30),
    st.lists(st.text(alphabet="医保卡密码锁a.(kg𠀀", min_size=3, max_size=5), min_size=1, max_size=4),
    st.data(),
)
def test_marker_with_words_and_their_bigrams_finds_what_a_find_loop_finds(text, words, data):
    """As a query marks them: words, and all or some of their bigrams."""
    from search_service.search.highlight import Marker
    from search_service.text.normalize import normalize

    bigrams = sorted({w[i : i + 2] for w in words for i in range(len(w) - 1)})
    terms = words + data.draw(st.lists(st.sampled_from(bigrams), unique=True))
    if data.draw(st.booleans()):
        terms += bigrams
    norm = normalize(text)
    assert Marker(terms).matches(norm) == reference_matches(norm, terms)


def reference_render(text, matches, window=None):
    """Escape every piece, as html.escape would, with no shortcut."""
    import html

    start, end = (0, len(text)) if window is None else snippet_window(len(text), matches, window)
    out, pos = ["…"] if start > 0 else [], start
    for s, e in matches:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out += [html.escape(text[pos:s]), "<mark>", html.escape(text[s:e]), "</mark>"]
        pos = e
    out.append(html.escape(text[pos:end]))
    return "".join(out) + ("…" if end < len(text) else "")


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet="医保卡<>&\"'a ", max_size=40), spans, st.one_of(st.none(), st.integers(1, 30)))
def test_render_escapes_like_escaping_every_piece(text, raw, window):
    matches = [[s, e] for s, e in merge_spans((s, s + n) for s, n in raw) if e <= len(text)]
    assert render(text, matches, window) == reference_render(text, matches, window)


PLANNER_ALPHABET = "医保卡社密码碼重置的锁鎖醫 "


@given(st.text(alphabet=PLANNER_ALPHABET, max_size=40), st.text(alphabet=PLANNER_ALPHABET + '"+-', max_size=12))
@hsettings(max_examples=150, deadline=None)
def test_marks_are_query_words_and_offsets_hold(text, query):
    """Whatever the query: matches are sorted, disjoint spans of the text, each
    covered by occurrences of the plan's marks, and no mark is a bigram taken
    from inside a longer query word (those rank but do not mark)."""
    plan = PLANNER.plan(query)
    norm = ANALYSIS.normalize(text)
    matches = Marker(plan.marks).matches(norm)
    assert matches == merge_spans(matches)
    for start, end in matches:
        assert 0 <= start < end <= len(text)
    clauses = [c for c in parse_query(query) if c.occur != "must_not"]
    words = {w.text for c in clauses for w in ANALYSIS.words(c.text)}
    typed = {ANALYSIS.normalize(c.text).text.strip() for c in clauses}
    fragments = {g for w in words if len(w) > 2 for g in bigrams(w)} - words - typed
    assert not (plan.marks & fragments)
    covered = set()
    for mark in plan.marks:
        # A phrase's mark is its words in order, anything but words between them (as the
        # index's positions skip punctuation and spaces): 保-保 marks 保保.
        pattern = _NOT_WORD.join(map(re.escape, mark.split())) if " " in mark else re.escape(mark)
        for m in re.finditer(f"(?=({pattern}))", norm.text) if mark else ():
            covered.update(range(*norm.span(m.start(1), m.end(1))))
    for start, end in matches:
        assert set(range(start, end)) <= covered
