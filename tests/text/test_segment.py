"""The two segmenter engines: jieba (reference) and rjieba (optional, compiled)."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.errors import IndexUnavailable
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from search_service.text.analysis import AnalysisConfig, get_analysis
from tests.helpers import SEED_CORPUS, write_corpus

USERDICT = ("医保卡 2000 n", "社保卡 2000 n")
JIEBA = get_analysis(AnalysisConfig(segmenter="jieba", userdict=USERDICT))
RJIEBA = get_analysis(AnalysisConfig(segmenter="rjieba", userdict=USERDICT))


def seed_lines():
    for path in sorted(SEED_CORPUS.glob("0*.txt")):
        yield from (line for line in path.read_text("utf-8").splitlines() if line.strip())


def test_rjieba_segments_the_seed_corpus_like_jieba():
    lines = list(seed_lines())
    same = sum(JIEBA.words(line) == RJIEBA.words(line) for line in lines)
    assert same == len(lines), f"{same}/{len(lines)} lines identical"
    both = [(t.text, t.start, t.end, t.pos) for t in RJIEBA.words("醫保卡密碼輸錯後被鎖住")]
    assert both == [(t.text, t.start, t.end, t.pos) for t in JIEBA.words("醫保卡密碼輸錯後被鎖住")]


def test_rjieba_applies_the_user_dictionary_like_jieba():
    odd = ("保卡锁 2000 n",)  # a made-up word that changes the segmentation
    plain = get_analysis(AnalysisConfig(segmenter="rjieba"))
    assert [t.text for t in plain.words("医保卡锁住了")] == ["医保", "医保卡", "锁住"]
    for engine in ("jieba", "rjieba"):
        with_word = get_analysis(AnalysisConfig(segmenter=engine, userdict=odd))
        assert [t.text for t in with_word.words("医保卡锁住了")] == ["医", "保卡锁", "住"]


@hsettings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("醫保卡密码锁住銀行12333abc-，。 \u0301㎏")), max_size=40))
def test_rjieba_offsets_point_into_the_original(text):
    for t in RJIEBA.words(text):
        assert 0 <= t.start < t.end <= len(text)
        assert RJIEBA.normalize(text[t.start : t.end]).text.find(t.text) != -1 or t.text in RJIEBA.normalize(text).text


def test_queries_use_the_engine_that_built_the_index(tmp_path, make_settings):
    corpus = write_corpus(
        tmp_path / "corpus",
        {f: (SEED_CORPUS / f).read_text("utf-8") for f in ("000_0cfe50795da03c63.txt", "001_965e0e36aae651b5.txt")},
    )
    build_index(make_settings(corpus=corpus, segmenter="rjieba"))
    serving = make_settings(corpus=corpus)  # the server's own setting says jieba
    assert serving.segmenter == "jieba"
    service = SearchService(serving)
    version = service.current()
    assert version.analysis.config.segmenter == "rjieba"
    assert version.analysis.segmenter.engine == "rjieba"
    result = service.search(SearchRequest.create(serving, q="医保卡被锁了怎么解锁", size=3))
    assert result.total > 0 and "<mark>醫保卡</mark>" in result.hits[0].highlight


def test_an_rjieba_index_without_rjieba_is_unavailable_with_the_reason(tmp_path, make_settings, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": "医保卡密码忘了怎么办\n带上身份证到银行重置密码。"})
    settings = make_settings(corpus=corpus, segmenter="rjieba")
    build_index(settings)
    monkeypatch.setitem(sys.modules, "rjieba", None)  # as if not installed
    from search_service.text import analysis, segment

    analysis.get_analysis.cache_clear()
    segment.get_segmenter.cache_clear()
    try:
        with pytest.raises(IndexUnavailable, match="rjieba"):
            SearchService(settings).current()
    finally:
        analysis.get_analysis.cache_clear()
        segment.get_segmenter.cache_clear()


def test_jiebas_dictionary_cache_loads_as_jieba_loads_it_and_a_broken_one_is_rebuilt(tmp_path):
    from search_service.text.segment import Segmenter

    built = Segmenter(cache_dir=tmp_path)  # no cache yet: jieba builds the dictionary and writes one
    built.initialize()
    cache = tmp_path / "jieba.cache"
    assert cache.is_file()
    loaded = Segmenter(cache_dir=tmp_path)
    loaded.initialize()
    assert loaded._tokenizer.FREQ == built._tokenizer.FREQ and loaded._tokenizer.total == built._tokenizer.total
    cache.write_bytes(b"not a marshal dump")
    rebuilt = Segmenter(cache_dir=tmp_path)
    rebuilt.initialize()
    assert [w for w, *_ in rebuilt.spans("医保卡密码")] == ["医保", "医保卡", "密码"]


def test_jieba_is_imported_without_pkg_resources_and_still_reads_its_data():
    """jieba imports pkg_resources (0.11 s) only to open its data files; we import it without."""
    import subprocess

    code = (
        "import sys; from search_service.text.segment import _import_jieba; jieba = _import_jieba(); "
        "assert 'pkg_resources' not in sys.modules; "
        "assert jieba._compat.get_module_res('dict.txt').readline().split()[0] == b'AT&T'; "
        "print(' '.join(jieba.lcut('医保卡密码忘了怎么办')))"
    )
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["医保卡", "密码", "忘", "了", "怎么办"]
