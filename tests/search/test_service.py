import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.errors import InvalidRequest
from search_service.ingest.reindex import build_index
from search_service.search.cache import ResultCache, result_bytes
from search_service.search.highlight import Marker, merge_spans, render
from search_service.search.request import SearchRequest
from search_service.search.results import Hit, SearchResult
from search_service.search.service import SearchService
from search_service.text.normalize import normalize
from tests.helpers import SIMPLIFIED_SEED, TRADITIONAL_SEED, jsonl, write_corpus


def marked(hit):
    return [hit.text[s:e] for s, e in hit.matches]


def test_simplified_query_finds_and_highlights_traditional_passages(search):
    result = search("医保卡被锁了怎么解锁")
    top = result.hits[0]
    assert top.doc_id == TRADITIONAL_SEED
    assert "醫保卡" in marked(top) and any("鎖" in m for m in marked(top))
    assert "<mark>醫保卡" in top.highlight
    for s, e in top.matches:
        assert top.highlight.count("<mark>") >= 1 and 0 <= s < e <= len(top.text)


def test_traditional_query_finds_simplified_passages(search):
    top = search("醫保卡密碼忘了怎麼辦").hits[0]
    assert top.doc_id == SIMPLIFIED_SEED
    assert "医保卡密码" in marked(top) or {"医保卡", "密码"} <= set(marked(top))


def test_numbers_and_single_characters(search):
    hits = search("12333").hits
    assert hits and hits[0].passage_id == f"{TRADITIONAL_SEED}#24"
    assert "12333" in hits[0].heading
    lock = search("锁")
    assert lock.total > 5
    assert set(marked(lock.hits[0])) == {"鎖"}
    assert all(set(marked(h)) <= {"鎖", "锁"} for h in lock.hits)


def test_a_question_does_not_need_every_word(search):
    result = search("医保卡密码 火星人")
    assert result.total > 0
    assert "医保卡" in result.hits[0].text or "醫保卡" in result.hits[0].text


def test_passages_matching_more_of_the_query_rank_higher(search):
    hits = search("社保卡 激活 定点药店", size=20).hits

    def coverage(h):
        n = normalize(h.text).text
        return sum(w in n for w in ["社保卡", "激活", "定点", "药店"])

    assert coverage(hits[0]) >= max(coverage(h) for h in hits[5:])


def test_phrase_required_and_excluded(search):
    phrase = search('"社会保障卡"', size=50)
    assert phrase.total > 0 and all("社會保障卡" in h.text or "社会保障卡" in h.text for h in phrase.hits)
    excluded = search("医保卡 -银行", size=50)
    assert excluded.total > 0
    assert all("銀行" not in h.text and "银行" not in h.text for h in excluded.hits)
    required = search("密码 +沈阳", size=50)
    assert required.total > 0 and all("沈陽" in h.text for h in required.hits)


def test_collapse_returns_one_passage_per_document(search):
    result = search("医保卡", collapse="doc")
    assert result.total == 2
    assert sorted(h.doc_id for h in result.hits) == sorted([SIMPLIFIED_SEED, TRADITIONAL_SEED])


def test_pages_do_not_overlap_and_doc_filter(search):
    first = search("医保卡", size=5, page=1)
    second = search("医保卡", size=5, page=2)
    assert first.total == second.total
    assert not {h.passage_id for h in first.hits} & {h.passage_id for h in second.hits}
    assert [h.rank for h in second.hits] == list(range(6, 6 + len(second.hits)))
    only = search("医保卡", doc=[SIMPLIFIED_SEED], size=50)
    assert only.total > 0 and {h.doc_id for h in only.hits} == {SIMPLIFIED_SEED}


def test_query_syntax_never_errors(search):
    for q in ['"unbalanced', "a:b", "title:医保卡", "(((", "+", "-", "AND OR NOT", "*?~^", "\\", "！？，。"]:
        search(q)


def test_validation(seed_settings):
    for kwargs in [
        {"q": ""},
        {"q": "  "},
        {"q": None},
        {"q": "x" * 257},
        {"q": "x", "size": 0},
        {"q": "x", "size": 101},
        {"q": "x", "size": "ten"},
        {"q": "x", "page": 0},
        {"q": "x", "page": 1001},
        {"q": "x", "collapse": "yes"},
        {"q": "x", "filter": ["bad key:v"]},
        {"q": 5},
        {"q": "x", "filters": ["k:v"]},
        {"q": "x", "filter": 0},
        {"q": "x", "filter": ["k", "v"]},
        {"q": "x", "sise": 10},
    ]:
        with pytest.raises(InvalidRequest):
            SearchRequest.create(seed_settings, **kwargs)


def test_metadata_filters(tmp_path, make_settings):
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "faq.jsonl": jsonl(
                {
                    "id": "f1",
                    "title": "医保卡挂失",
                    "text": "医保卡丢了要先挂失再补办。",
                    "category": "faq",
                    "tags": ["医保", "挂失"],
                },
                {
                    "id": "r1",
                    "title": "医保条例",
                    "text": "医保卡由人力资源和社会保障部门统一发放。",
                    "category": "regulation",
                },
            )
        },
    )
    settings = make_settings(corpus=corpus)
    build_index(settings)
    service = SearchService(settings)
    faq = service.search(SearchRequest.create(settings, q="医保卡", filter=["category:faq"]))
    assert [h.doc_id for h in faq.hits] == ["f1"] and faq.hits[0].metadata["category"] == "faq"
    tagged = service.search(SearchRequest.create(settings, q="医保卡", filter=["tags:挂失"]))
    assert [h.doc_id for h in tagged.hits] == ["f1"]
    both = service.search(SearchRequest.create(settings, q="医保卡", filter=["category:faq", "category:regulation"]))
    assert both.total == 2
    # Values are normalized like text: traditional script, full width and case find the indexed value.
    for value in ("tags:掛失", "category:FAQ", "category:ｆａｑ"):
        assert [h.doc_id for h in service.search(SearchRequest.create(settings, q="医保卡", filter=[value])).hits] == [
            "f1"
        ]
    assert service.stats()["filter_keys"] == ["category", "tags"]
    with pytest.raises(InvalidRequest, match="the keys are: category, tags") as exc:
        service.search(SearchRequest.create(settings, q="医保卡", filter=["catgory:faq"]))
    assert exc.value.code == "bad_filter"


def test_fields_no_passage_has_are_not_scored(tmp_path, make_settings):
    """Without titles or headings, a query scores only body, gram and pair terms, and ranks the same."""
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "faq.jsonl": jsonl(
                {"id": "a", "text": "医保卡丢了要先挂失再补办。"},
                {"id": "b", "text": "医保卡密码忘了可以重置。"},
                {"id": "c", "text": "社保卡在银行网点激活。"},
            )
        },
    )
    settings = make_settings(corpus=corpus)
    build_index(settings)
    service = SearchService(settings)
    version = service.current()
    assert version.index.empty_fields == {"title", "title_grams", "heading", "heading_grams"}
    plan = service.build_query(version, "医保卡密码")
    assert {f for part in plan.parts for f, _, _ in part} == {"body", "grams", "pairs"}
    request = SearchRequest.create(settings, q="医保卡密码")
    found = [(h.passage_id, h.score) for h in service.search(request).hits]
    # As if they might match: every field planned, and read (the Whoosh engine's ranker).
    version.planner.empty_fields = version.index.scorer.empty_fields = frozenset()
    version.results = ResultCache(0)
    assert [(h.passage_id, h.score) for h in service.search(request).hits] == found
    assert [p for p, _ in found] == ["b#0", "a#0", "c#0"]


def test_overlapping_matches_merge_to_the_longest():
    norm = normalize("马克思主义和马克")
    assert Marker(["马克", "马克思"]).matches(norm) == [[0, 3], [6, 8]]
    assert merge_spans([(0, 2), (1, 3), (5, 6)]) == [[0, 3], [5, 6]]


def test_highlight_is_escaped_and_cut_to_a_window():
    text = "<b>" + "前" * 200 + "医保卡" + "后" * 200
    norm = normalize(text)
    matches = Marker(["医保卡"]).matches(norm)
    html = render(text, matches, 60)
    assert html.startswith("…") and html.endswith("…")
    assert "<mark>医保卡</mark>" in html and "<b>" not in html
    assert len(html.replace("<mark>", "").replace("</mark>", "")) <= 62
    assert (
        render("<i>医保卡</i>", Marker(["医保卡"]).matches(normalize("<i>医保卡</i>")))
        == "&lt;i&gt;<mark>医保卡</mark>&lt;/i&gt;"
    )


def test_analyze_gives_each_part_its_document_frequency(tmp_path, make_settings):
    """Gram parts too: their postings are in the ranking postings, not in Whoosh's term table."""
    docs = {
        "a.txt": "医保卡\n医保卡密码怎么重置。",
        "b.txt": "医保\n医保报销比例。",
        "c.txt": "银行\n银行网点营业时间。",
    }
    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", docs))
    build_index(settings)
    described = SearchService(settings).analyze("医保卡")["query"].split("; ")
    assert "body:医保^1 [common, df=2]" in described
    assert "grams:医保^0.5 [common, df=2]" in described
    assert "grams:保卡^0.5 [common, df=1]" in described
    assert "title_grams:保卡^0.3 [common, df=1]" in described


def test_synonyms_expand_queries(tmp_path, make_settings):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": "标题\n社会保障卡可以在银行网点激活使用。"})
    settings = make_settings(corpus=corpus)
    build_index(settings)
    service = SearchService(settings)
    assert service.search(SearchRequest.create(settings, q="社保卡")).total == 1
    assert service.analyze("社保卡")["synonyms"] == {"社保卡": ["社会保障卡"]}
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    without = settings.replace(synonyms=str(empty), index_dir=str(tmp_path / "plain"))
    build_index(without)
    assert SearchService(without).search(SearchRequest.create(without, q="社保卡")).total == 0


def test_the_json_body_is_what_asdict_gives(search):
    import dataclasses

    result = search("医保卡被锁了怎么解锁", size=5)
    assert result.hits and result.as_dict() == dataclasses.asdict(result)


def test_highlights_from_the_stored_normalization_equal_query_time_normalization(tmp_path, make_settings):
    from search_service.search.highlight import Marker

    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "simplified.txt": "医保卡密码忘了怎么办\n忘记医保卡密码可以带上身份证到社保中心办理密码重置。",
            "traditional.txt": "醫保卡密碼忘了怎麼辦\n忘記醫保卡密碼可以帶上身份證到社保中心辦理密碼重置。",
            # NFKC changes the length here (㎏ -> kg), so no character-for-character map
            "folded.txt": "医保卡密码重置须知\n办理密码重置时请带上身份证，行李限重20㎏，ＡＢＣ窗口。",
        },
    )
    settings = make_settings(corpus=corpus)
    build_index(settings)
    service = SearchService(settings)
    version = service.current()
    stored = {
        d: f.get("normalized") for d in ("simplified", "traditional", "folded") for f in version.index.document(d)[0]
    }
    assert stored["simplified"] is None  # already normalized: nothing stored
    assert stored["traditional"] == "忘记医保卡密码可以带上身份证到社保中心办理密码重置。"
    assert stored["folded"] == ""  # normalized again at query time
    everywhere = {"simplified", "traditional", "folded"}
    for q, expected in (("医保卡密码重置", everywhere), ("密碼 身份證", everywhere), ("20kg abc 窗口", {"folded"})):
        result = service.search(SearchRequest.create(settings, q=q))
        marker = Marker(service.build_query(version, q).marks)
        assert {h.doc_id for h in result.hits} == expected, q
        for hit in result.hits:
            assert hit.matches == marker.matches(normalize(hit.text)), (q, hit.doc_id)
            assert hit.matches


def test_repeated_requests_are_answered_from_the_result_cache_of_their_version(tmp_path, make_settings, monkeypatch):
    corpus = write_corpus(
        tmp_path / "corpus", {"a.txt": "医保卡密码忘了怎么办\n带上身份证和医保卡到社保中心办理密码重置。"}
    )
    settings = make_settings(corpus=corpus, reload_seconds=0)
    build_index(settings)
    service = SearchService(settings)
    service.current().results = ResultCache(2, weigh=lambda result: 1)  # room for two results
    computed = []
    original = SearchService._search
    monkeypatch.setattr(SearchService, "_search", lambda self, *a: computed.append(a[1]) or original(self, *a))

    def search(q, **params):
        return service.search(SearchRequest.create(settings, q=q, **params))

    first = search("医保卡密码")
    again = search("医保卡密码")
    assert len(computed) == 1  # the second answer came from the cache
    assert again.hits == first.hits and again.total == first.total and again.version == first.version
    search("医保卡密码", size=5)  # other parameters: another entry
    search("身份证")
    assert len(computed) == 3
    search("医保卡密码")  # dropped: the cache holds the last two requests
    assert len(computed) == 4
    # A new version starts with an empty cache.
    (corpus / "b.txt").write_text("医保卡密码锁了\n输错三次医保卡密码会被锁住。", encoding="utf-8")
    build_index(settings)
    newer = search("医保卡密码")
    assert len(computed) == 5 and newer.version != first.version and newer.total == 2
    # Size 0: no cache.
    uncached = SearchService(settings.replace(result_cache_mb=0))
    monkeypatch.setattr(SearchService, "_search", lambda self, *a: computed.append(a[1]) or original(self, *a))
    uncached.search(SearchRequest.create(settings, q="身份证"))
    uncached.search(SearchRequest.create(settings, q="身份证"))
    assert len(computed) == 7


def test_result_cache_is_bounded_by_what_results_hold():
    def hit(text: str) -> Hit:
        return Hit(
            1,
            1.0,
            "d#0",
            "d",
            "标题",
            "",
            text,
            text,
            [[0, 1]],
            "标题",
            [],
            "",
            [],
            "main",
            None,
            "d.txt",
            {},
            0,
            0,
            len(text),
        )

    def result(*hits: Hit) -> SearchResult:
        return SearchResult("q", len(hits), 1, 10, 1, 0.0, list(hits), "v1")

    def request(q: str) -> SearchRequest:
        return SearchRequest(q, 10, 1, (), (), None)

    small = result(hit("医保卡密码"))
    assert result_bytes(result(hit("医" * 20_000))) > 20 * result_bytes(small)  # long passages weigh what they hold
    assert result_bytes(result(*[hit("医保卡密码")] * 100)) > 50 * result_bytes(small)  # so do many hits
    cache = ResultCache(3 * result_bytes(small))
    for q in "abc":
        cache.put(request(q), small)
    assert all(cache.get(request(q)) is small for q in "abc") and cache.used == 3 * result_bytes(small)
    cache.put(request("huge"), result(hit("医" * 20_000)))  # larger than the whole cache: not kept, nothing dropped
    assert cache.get(request("huge")) is None and cache.get(request("a")) is small
    cache.put(request("d"), small)  # b, least recently used, goes
    assert cache.get(request("b")) is None and cache.get(request("d")) is small
    cache.put(request("d"), small)  # replacing an entry counts it once
    assert cache.used == 3 * result_bytes(small)
    assert ResultCache(0).get(request("a")) is None  # 0: off


def test_every_hit_of_a_title_match_shows_why(search):
    """医保卡 ranks every passage of both seeds (their titles hold it); each hit
    marks it somewhere: in its text, or else in its title or heading."""
    result = search("医保卡", size=100)
    assert result.total == len(result.hits) == 52
    for hit in result.hits:
        assert hit.matches or hit.title_matches or hit.heading_matches, hit.passage_id
        for text, matches, html in (
            (hit.title, hit.title_matches, hit.title_highlight),
            (hit.heading, hit.heading_matches, hit.heading_highlight),
        ):
            assert all(re.fullmatch("(医保卡|医保)+", normalize(text[s:e]).text) for s, e in matches)
            assert html.count("<mark>") == len(matches)
    title_only = [h for h in result.hits if not h.matches]
    assert title_only and all(h.title_matches for h in title_only)


def test_marks_are_the_query_words_not_fragments_of_other_words(search):
    # 保卡 is a bigram of 医保卡 (it ranks 社保卡 passages) but never marked on its own.
    for hit in search("医保卡", size=100).hits:
        for s, e in hit.matches:  # touching marks are one: 医保卡医保卡
            assert re.fullmatch("(医保卡|医保)+", normalize(hit.text[s:e]).text), hit.text[max(0, s - 2) : e + 2]
    # A query that short marks what it is.
    assert any("保卡" in marked(h) for h in search("保卡", size=50).hits)


def test_a_phrase_marks_the_phrase_only(search):
    result = search('"密码重置"')
    assert result.hits
    for hit in result.hits:
        # the phrase's words in order; punctuation between them is skipped, as in the index
        assert all(re.fullmatch(r"密码\W*重置", normalize(m).text) for m in marked(hit)) and marked(hit)


def test_a_query_of_stopwords_finds_the_passages_holding_them(search):
    result = search("的")
    assert result.total > 10
    for hit in result.hits:
        assert set(marked(hit)) == {"的"}


def _seed_phrases():
    """(doc id, phrase, passage id) for each sentence of at least 12 characters of both seeds:
    its first 20 characters (or all of it) and the passage holding them. Page chrome (the splitter's UI
    lines, lines repeated across documents) and the title line are not passage text."""
    from search_service.ingest.corpus import CorpusReader
    from search_service.ingest.passages import PassageSplitter, is_boilerplate, is_heading, line_key, repeated_lines
    from tests.helpers import SEED_CORPUS

    report = CorpusReader(SEED_CORPUS, exclude=[SEED_CORPUS / "userdict.txt", SEED_CORPUS / "synonyms.txt"]).read()
    chrome = repeated_lines(report.documents)
    splitter = PassageSplitter(50, 300, chrome)
    out = []
    for doc in report.documents:
        passages = splitter.split(doc)
        pos = 0
        for line in doc.text.split("\n"):
            start, pos = pos, pos + len(line) + 1
            if is_boilerplate(line) or line_key(line) in chrome or line_key(line) == line_key(doc.title):
                continue
            headed = [p for p in passages if line_key(p.heading) and line_key(p.heading) in line_key(line)]
            if is_heading(line) or (headed and len(line_key(line)) <= 60):
                # A heading (or a related item's title) is its passages' heading, not their text.
                key = line_key(line).lstrip("#•· ")
                out.append((doc.doc_id, key, None))
                continue
            for m in re.finditer(r"[^。！？!?]{12,}", line):
                s = start + m.start() + (len(m.group()) - len(m.group().lstrip()))
                n = min(20, len(m.group().strip()))  # the sentence's first 20 characters, or all of it
                phrase = doc.text[s : s + n]
                if not phrase.strip() or "\n" in phrase:
                    continue
                holder = [p for p in passages if p.start <= s and s + n <= p.end]  # a passage is a slice
                assert holder, f"{phrase!r} of {doc.doc_id} is in no passage"
                out.append((doc.doc_id, phrase, holder[0].passage_id))
    return out


def test_every_sentence_of_both_seeds_is_findable(search):
    """A search for any sentence of the seeds returns a passage holding it within two
    pages (related articles rank below the page's own text, so 20 hits); one for a
    heading returns a passage it heads."""
    phrases = _seed_phrases()
    assert len(phrases) > 150 and any(p and p.endswith("#25") for _, _, p in phrases)
    missing = []
    for _, phrase, pid in phrases:
        hits = search(phrase, size=20).hits
        if pid is None:  # a heading: some passage it heads is returned (a related item's title
            # competes with 50 passages of the same topic here, at half weight: not always in 20)
            found = any(phrase in h.heading for h in search(phrase, size=100).hits)
        else:  # the passage holding it, or another holding the same words (a repeated teaser)
            found = any(h.passage_id == pid or phrase in h.text for h in hits)
        if not found:
            missing.append((phrase, pid))
    assert not missing, missing[:10]


def test_the_related_articles_answer_too(search):
    for q in ("96102", "12333", "APP密码"):
        hits = search(q, size=20).hits
        assert any(
            h.doc_id == SIMPLIFIED_SEED and h.section == "related" and q.lower() in h.text.lower() for h in hits
        ), q
    assert [h.doc_id for h in search("96102").hits] == [SIMPLIFIED_SEED]


def test_related_articles_rank_below_the_same_words_in_main_text(tmp_path, engine_settings):
    """The same sentence in one page's own text and in another page's related list."""
    sentence = "社保卡丢失后应当先拨打服务热线挂失，再到网点补办新卡。"
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "a.txt": f"社保卡挂失\n{sentence}\n其他内容，讲别的事情。",
            "b.txt": f"医保卡密码\n重置密码要带身份证到银行网点办理。\n相关文章\n• 社保卡丢了怎么办\n{sentence}",
        },
    )
    settings = engine_settings(corpus)
    build_index(settings)
    hits = SearchService(settings).search(SearchRequest.create(settings, q="丢失后拨打服务热线挂失")).hits
    assert [(h.doc_id, h.section) for h in hits[:2]] == [("a", "main"), ("b", "related")]
    assert hits[1].score <= hits[0].score * 0.6  # the related weight (0.5), titles and headings aside


def test_total_counts_every_match_whatever_the_page_size(search):
    """The best hits may come from the query's rare words alone; the total still counts
    the passages matching only its common ones, so the page count never hides a page."""
    for q in ("医保卡被锁了怎么解锁", "社保卡 12333", "的"):
        everything = search(q, size=100)
        assert everything.total == len(everything.hits) > 0
        one = search(q, size=1)
        assert one.total == everything.total and one.pages == everything.total
        grouped = search(q, size=1, collapse="doc")
        assert grouped.total == len({h.doc_id for h in everything.hits})


def test_a_pdf_hit_says_its_page(tmp_path, engine_settings):
    from pathlib import Path

    pdf = (Path(__file__).parents[1] / "ingest" / "data" / "two-pages.pdf").read_bytes()
    settings = engine_settings(write_corpus(tmp_path / "corpus", {"guide.pdf": pdf, "a.txt": "标题\n别的文档。"}))
    build_index(settings)
    service = SearchService(settings)
    first = service.search(SearchRequest.create(settings, q="九六一零二")).hits[0]
    assert (first.doc_id, first.page) == ("guide", 1)
    second = service.search(SearchRequest.create(settings, q="银行柜台解锁")).hits[0]  # traditional text, page 2
    assert second.page == 2 and "<mark>" in second.highlight
    assert service.passage(second.passage_id).page == 2
    assert [p.page for p in service.document("guide").passages] == [1, 2]


def test_a_short_pdfs_second_page_is_reported_as_page_two(tmp_path, engine_settings):
    """Two short pages (one passage's worth of text together): a passage holds one page's
    text, so a sentence of page 2 is found on page 2, in a hit, its passage, its document
    and both pages."""
    from pathlib import Path

    from search_service.web.app import create_app

    pdf = (Path(__file__).parents[1] / "ingest" / "data" / "short-two-pages.pdf").read_bytes()
    settings = engine_settings(write_corpus(tmp_path / "corpus", {"card.pdf": pdf, "a.txt": "标题\n别的文档。"}))
    build_index(settings)
    service = SearchService(settings)
    hit = service.search(SearchRequest.create(settings, q="银行柜台解锁")).hits[0]
    assert (hit.doc_id, hit.page) == ("card", 2) and hit.text.startswith("醫保卡被鎖住後")
    assert service.passage(hit.passage_id).page == 2
    assert [(p.page, p.text[:4]) for p in service.document("card").passages] == [(1, "医保卡密"), (2, "醫保卡被")]
    assert service.search(SearchRequest.create(settings, q="社保中心重置")).hits[0].page == 1
    client = create_app(settings.__dict__).test_client()
    assert "第 2 页" in client.get("/", query_string={"q": "银行柜台解锁"}).get_data(as_text=True)
    document = client.get("/documents/card", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert document.index("第 1 页") < document.index("社保中心") < document.index("第 2 页") < document.index("櫃台")


_WORDS = ["医保卡", "密码", "银行", "解锁", "社保卡", "身份证", "重置", "挂失"]


@pytest.fixture(scope="module")
def constrained_corpus(tmp_path_factory, engine, request):
    """25 documents of the seeds' sentences, each a few passages, with a category: every
    query's matches fit in one page of 100."""
    import random

    from tests.engine.whoosh.test_writer import SENTENCES
    from tests.helpers import on_engine, settings_factory

    rng = random.Random(3)
    records = [
        {
            "id": f"d{i}",
            "title": f"问答{i}",
            "text": "\n\n".join(rng.sample(SENTENCES, 3)),
            "category": ["faq", "law"][i % 2],
        }
        for i in range(25)
    ]
    root = tmp_path_factory.mktemp("constrained")
    settings = on_engine(
        settings_factory(root)(write_corpus(root / "corpus", {"docs.jsonl": jsonl(*records)})), engine, request
    )
    build_index(settings)
    return settings, SearchService(settings)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3, unique=True),
    kind=st.sampled_from(["doc", "filter", "required", "excluded", "collapse"]),
    data=st.data(),
)
def test_a_constraint_never_changes_the_order_among_the_passages_it_admits(constrained_corpus, words, kind, data):
    """The same query with a constraint (doc, filter, +word of the query, -word, collapse=doc)
    ranks the passages it admits in the order the query alone ranks them."""
    settings, service = constrained_corpus

    def ids(q: str, **params):
        result = service.search(SearchRequest.create(settings, q=q, size=100, **params))
        assert result.total <= 100
        return [h.passage_id for h in result.hits]

    alone = ids(" ".join(words))
    if kind == "collapse":
        firsts, seen = [], set()
        for passage in alone:
            if passage.split("#")[0] not in seen:
                seen.add(passage.split("#")[0])
                firsts.append(passage)
        assert ids(" ".join(words), collapse="doc") == firsts
        return
    if kind == "doc":
        docs = data.draw(st.lists(st.sampled_from([f"d{i}" for i in range(25)]), min_size=1, max_size=8, unique=True))
        constrained = ids(" ".join(words), doc=docs)
        assert constrained == [p for p in alone if p.split("#")[0] in docs]
        return
    if kind == "filter":
        constrained = ids(" ".join(words), filter=["category:faq"])
        faq = {f"d{i}" for i in range(0, 25, 2)}
        assert constrained == [p for p in alone if p.split("#")[0] in faq]
        return
    if kind == "required":
        required = data.draw(st.sampled_from(words))
        q = " ".join(f"+{w}" if w == required else w for w in words)
    else:
        q = " ".join(words) + " -" + data.draw(st.sampled_from([w for w in _WORDS if w not in words] or ["不存在"]))
    constrained = ids(q)
    kept = set(constrained)
    assert [p for p in alone if p in kept] == [p for p in constrained if p in set(alone)]
    if kind == "excluded":
        assert kept <= set(alone)


def test_the_query_words_together_rank_first_on_the_bundled_corpus(search):
    """APP密码: the passage holding 「社保APP密码」 ranks above those with 密码 many times and
    App once, apart (issue 37's case; before the pairs field it was not in the first ten)."""
    hits = search("APP密码", size=10).hits
    assert "APP密码" in hits[0].text, [h.text[:40] for h in hits]


def test_a_passage_with_the_words_together_outranks_one_with_them_apart(tmp_path, engine_settings):
    """Same words, same length, same counts: the passage where they stand together, in the
    query's order (one stopword may stand between), ranks first; across punctuation they
    are apart."""
    filler = "本中心提供多项便民服务。"
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "apart.txt": "甲\n" + filler + "社保卡可以在线办理，密码请到窗口重置。" + filler,
            "together.txt": "乙\n" + filler + "社保卡密码可以在线办理，请到窗口重置。" + filler,
            "stopword.txt": "丙\n" + filler + "社保卡的密码可以在线办理，请到窗口重置。" + filler,
            "reversed.txt": "丁\n" + filler + "密码社保卡可以在线办理，请到窗口重置。" + filler,
            "comma.txt": "戊\n" + filler + "社保卡，密码可以在线办理，请到窗口重置。" + filler,
        },
    )
    settings = engine_settings(corpus)
    build_index(settings)
    service = SearchService(settings)
    hits = service.search(SearchRequest.create(settings, q="社保卡密码", size=5)).hits
    order = [h.doc_id for h in hits]
    assert set(order[:2]) == {"together", "stopword"}, order
    assert order.index("together") < order.index("stopword"), order  # shorter, same pair
    assert len(order) == 5


@given(
    words=st.lists(
        st.sampled_from(["社保卡", "密码", "重置", "银行", "窗口", "办理", "的", "app", "12333"]),
        min_size=1,
        max_size=8,
    ),
    seps=st.lists(st.sampled_from(["", "", " ", "的", "，", "。", "\n"]), min_size=8, max_size=8),
)
@hsettings(max_examples=150, deadline=None)
def test_pairs_are_neighbouring_words_with_their_offsets_in_the_original(words, seps):
    from search_service.ingest.reindex import analysis_config
    from search_service.settings import Settings
    from search_service.text.analysis import PAIR_JOIN, get_analysis

    analysis = get_analysis(analysis_config(Settings.from_env()))
    text = "".join(w + s for w, s in zip(words, seps, strict=False))
    for pair in analysis.pairs(text):
        first, second = pair.text.split(PAIR_JOIN)
        original = normalize(text[pair.start : pair.end]).text
        assert original.startswith(first) and original.endswith(second), (pair, text)
        between = original[len(first) : len(original) - len(second)]
        assert not re.search(r"[^\w\s]", between), (pair, text)
