from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.text.analysis import AnalysisConfig, get_analysis, gram_text, precise

CONFIG = AnalysisConfig(userdict=("医保卡 2000 n", "社保卡 2000 n"))
ANALYSIS = get_analysis(CONFIG)


def words(text):
    return [(t.text, t.start, t.end, t.pos) for t in ANALYSIS.words(text)]


def test_traditional_and_simplified_give_the_same_words_with_original_offsets():
    trad = "醫保卡密碼輸錯後被鎖住"
    simp = "医保卡密码输错后被锁住"
    assert words(trad) == words(simp)
    assert [t[0] for t in words(trad)] == ["医保", "医保卡", "密码", "输错", "后", "被", "锁住"]
    for term, start, end, _ in words(trad):
        assert get_analysis(CONFIG).normalize(trad[start:end]).text == term
    assert trad[0:3] == "醫保卡"


def test_subwords_share_the_position_of_their_word():
    toks = words("马克思主义")
    assert {t[3] for t in toks} == {0}
    assert ("马克思主义", 0, 5, 0) in toks
    precise = words("医保卡密码")
    assert [(t, p) for t, _, _, p in precise] == [("医保", 0), ("医保卡", 0), ("密码", 1)]


def test_alphanumeric_runs_stay_whole_and_punctuation_is_dropped():
    toks = [t[0] for t in words("拨打12333或96102，下载APP！")]
    assert "12333" in toks and "96102" in toks and "app" in toks
    assert "，" not in toks and "！" not in toks


def test_stopwords_are_dropped_but_positions_advance():
    toks = words("医保卡的密码")
    assert "的" not in [t[0] for t in toks]
    assert {t[0]: t[3] for t in toks}["密码"] == 2


def test_grams_are_cjk_unigrams_and_bigrams_with_original_offsets():
    grams = [(t.text, t.start, t.end) for t in ANALYSIS.grams("鎖住了, ok")]
    assert grams == [("锁", 0, 1), ("锁住", 0, 2), ("住", 1, 2), ("住了", 1, 3), ("了", 2, 3)]


def test_trace_shows_every_stage():
    trace = ANALYSIS.trace("醫保卡的密碼")
    assert trace["normalized"] == "医保卡的密码"
    assert trace["words"][1]["original"] == "醫保卡"
    assert [t["term"] for t in trace["stopwords"]] == ["的"]


query_text = st.text(
    alphabet=st.sampled_from('医保卡密码忘了怎么办醫保卡密碼鎖住解锁银行12333app ，。？!"-+:'), max_size=30
)


@hsettings(max_examples=200, deadline=None)
@given(query_text)
def test_query_terms_are_a_subset_of_the_indexed_terms_of_the_same_text(text):
    indexed = {t.text for t in ANALYSIS.words(text)} | {t.text for t in ANALYSIS.grams(text)}
    query_words = {t.text for t in precise(ANALYSIS.words(text))}
    assert query_words <= indexed


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=50))
def test_every_term_maps_to_a_span_inside_the_original(text):
    for t in ANALYSIS.words(text) + ANALYSIS.grams(text):
        assert 0 <= t.start < t.end <= len(text)


@hsettings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("醫保卡密码锁住銀行12333abc，。 \u0301㎏𠀀")), max_size=40))
def test_gram_counts_count_the_grams(text):
    from collections import Counter

    assert ANALYSIS.gram_counts(text) == Counter(t.text for t in ANALYSIS.grams(text))


@hsettings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("醫保卡密码锁住銀行12333abc，。 \u0301㎏𠀀\u4dbf\u4e00\u9fff\ufaff\U0003134f\U00031350")
        ),
        max_size=40,
    )
)
def test_gram_keys_count_the_same_grams_as_gram_counts(text):
    """The indexer counts grams as integer keys; they must be exactly the grams, edges of the CJK ranges included."""
    keys, counts = ANALYSIS.gram_key_counts(text)
    assert list(keys) == sorted(keys)
    assert {gram_text(int(k)): int(n) for k, n in zip(keys, counts)} == dict(ANALYSIS.gram_counts(text))


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("醫保卡密码锁住銀行中华人民共和国的了12333abc，。 \u0301-")), max_size=60))
def test_word_positions_are_the_positions_of_the_words(text):
    """The indexer reads each word's positions without its offsets; they must be the words' own."""
    expected: dict[str, list[int]] = {}
    for t in ANALYSIS.words(text):
        expected.setdefault(t.text, []).append(t.pos)
    got = ANALYSIS.word_positions(text)
    assert got == expected and list(got) == list(expected)
