"""Readings by word (pinyin) and Latin runs read as pinyin."""

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from search_service.text.analysis import AnalysisConfig, get_analysis
from search_service.text.pinyin import MAX_SPLITS, initials, syllable_splits, syllables, toneless, word_reading

POLYPHONES = [
    line.split("\t")
    for line in (Path(__file__).parent / "polyphones.tsv").read_text("utf-8").splitlines()
    if line and not line.startswith("#")
]


def test_every_listed_polyphone_word_reads_right():
    assert len(POLYPHONES) >= 60
    wrong = [
        (w, " ".join(word_reading(w).syllables), want)
        for w, want in POLYPHONES
        if word_reading(w).syllables != tuple(want.split())
    ]
    assert wrong == []


def test_a_character_no_phrase_fixes_keeps_its_other_readings_after_the_usual_one():
    assert word_reading("医保卡").syllables == ("yi", "bao", "ka")
    assert ("yi", "bao", "qia") in word_reading("医保卡").others
    assert word_reading("银行").others == ()  # a phrase fixes both
    assert word_reading("大夫").others == (("da", "fu"),)  # the override's second reading
    assert word_reading("2024年").syllables[:4] == ("2", "0", "2", "4")
    assert initials(word_reading("招商银行").syllables) == "zsyh"


def test_every_form_of_a_typed_reading_splits_the_same():
    for typed in ("yibaoka", "yi bao ka", "YiBaoKa", "yī bǎo kǎ", "yi1bao3ka3", "yi'bao'ka"):
        assert syllable_splits(typed)[0] == ("yi", "bao", "ka"), typed
    assert syllable_splits("yibaok")[0] == ("yi", "bao", "k")  # the last syllable half typed
    assert syllable_splits("yibaok", half_last=False) == []
    assert syllable_splits("xianggang")[0] == ("xiang", "gang")
    assert toneless("lǜ") == toneless("lv") == "lv"


def test_what_is_not_pinyin_does_not_split():
    for run in ("hello", "qwrt", "医保", "yi-bao", ""):
        assert syllable_splits(run) == [], run


def test_a_hostile_run_splits_within_its_bound():
    for run in ("a" * 256, "xian" * 64, "ang" * 85):
        assert len(syllable_splits(run)) <= MAX_SPLITS


@given(st.lists(st.sampled_from(sorted(syllables())), min_size=1, max_size=5))
def test_syllables_typed_apart_split_back_into_themselves_first(seq):
    assert syllable_splits(" ".join(seq))[0] == tuple(seq)


def test_the_analysis_trace_shows_each_words_reading():
    trace = get_analysis(AnalysisConfig()).trace("招商银行的还款日")
    readings = {r["word"]: r for r in trace["readings"]}
    assert readings["招商银行"]["pinyin"] == "zhao shang yin hang"
    assert readings["还款"]["pinyin"] == "huan kuan" or readings["还款日"]["pinyin"] == "huan kuan ri"
