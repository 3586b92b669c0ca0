import itertools
import re
from collections import Counter

from hypothesis import example, given, settings
from hypothesis import strategies as st

from search_service.ingest.corpus import CorpusReader, Document
from search_service.ingest.passages import PassageSplitter, RepeatedLines, line_key, repeated_lines
from tests.helpers import SEED_CORPUS, SIMPLIFIED_SEED, TRADITIONAL_SEED

BOILERPLATE = ["换一批", "展开", "0/500", "加密服务已开启", "人看过", "律师服务", "点击反馈", "相关咨询", "#医疗知识"]


def seed_passages():
    report = CorpusReader(SEED_CORPUS, exclude=[SEED_CORPUS / "userdict.txt", SEED_CORPUS / "synonyms.txt"]).read()
    assert [d.doc_id for d in report.documents] == [SIMPLIFIED_SEED, TRADITIONAL_SEED]
    splitter = PassageSplitter(50, 300, repeated_lines(report.documents))
    return {d.doc_id: (d, splitter.split(d)) for d in report.documents}


def test_seed_passages_are_exact_slices_of_their_documents():
    for doc, passages in seed_passages().values():
        assert passages
        for n, p in enumerate(passages):
            assert doc.text[p.start : p.end] == p.text
            assert p.passage_id == f"{doc.doc_id}#{n}" and p.ordinal == n
            assert p.title == doc.title


def test_seed_passage_counts_lengths_and_headings():
    seeds = seed_passages()
    _simp_doc, simp = seeds[SIMPLIFIED_SEED]
    _trad_doc, trad = seeds[TRADITIONAL_SEED]
    assert len([p for p in simp if p.section == "main"]) == 8
    # The page's related articles and questions (a city name stranded between chrome lines is chrome too).
    assert len([p for p in simp if p.section == "related"]) == 19
    assert len(trad) == 25 and {p.section for p in trad} == {"main"}
    assert simp[0].heading == "一、城镇居民医保卡密码忘了怎么办"
    assert simp[0].text.startswith("忘记医保卡密码可以带上本人身份证")
    assert trad[4].heading == "『貳』 醫保卡被鎖如何解鎖"
    assert trad[-1].heading == "『捌』 醫保卡被鎖住打12333可以解鎖嗎"
    for p in simp + trad:
        assert len(p.text) <= 300


def test_scraped_boilerplate_never_becomes_a_passage():
    for _doc, passages in seed_passages().values():
        for p in passages:
            for fragment in BOILERPLATE:
                assert fragment not in p.text, (fragment, p.passage_id)
            assert "更多医疗机构相关文章" not in p.text
            assert "擴展閱讀:【保險】" not in p.text  # an ad repeated in the page


def test_a_pages_related_articles_are_passages_of_their_own_section():
    _doc, passages = seed_passages()[SIMPLIFIED_SEED]
    related = [p for p in passages if p.section == "related"]
    assert passages[: len(passages) - len(related)] == [p for p in passages if p.section == "main"]
    # Each item starts a passage: its title, then its teaser as scraped (cut mid-sentence);
    # the heading is the list's own.
    first = related[0]
    assert first.heading == "更多医疗机构相关文章"
    assert first.text.startswith("• 西安市医保卡密码忘了怎么办\n    西安市医保卡密码忘了,咋办")
    assert {p.heading for p in related} == {"更多医疗机构相关文章", "相关咨询"}
    assert any("96102" in p.text for p in related) and any("APP密码" in p.text for p in related)


def test_a_marker_line_never_drops_the_text_after_it():
    text = "标题\n第一段正文，讲医保卡的办理流程。\n推荐阅读\n第二段正文，讲密码重置。\n第三段正文，讲挂失。"
    doc = Document("d", "标题", text, "d.txt", title_in_text=True)
    passages = PassageSplitter(20, 300).split(doc)
    assert [p.text for p in passages] == [
        "第一段正文，讲医保卡的办理流程。",
        "第二段正文，讲密码重置。\n第三段正文，讲挂失。",
    ]
    assert [p.section for p in passages] == ["main", "related"]


def test_long_paragraphs_split_at_sentence_ends():
    sentence = "这是一个用来测试切分的句子，它有二十多个字符。"
    doc = Document("d", "标题", "标题\n" + sentence * 20, "d.txt", title_in_text=True)
    passages = PassageSplitter(50, 120).split(doc)
    assert len(passages) == 4
    for p in passages:
        assert len(p.text) <= 120 and p.text.endswith("。")
        assert doc.text[p.start : p.end] == p.text


def test_short_neighbouring_lines_merge():
    doc = Document("d", "标题", "标题\n短行一。\n短行二。\n\n短行三。\n" + "长" * 80, "d.txt", title_in_text=True)
    passages = PassageSplitter(10, 300).split(doc)
    assert passages[0].text == "短行一。\n短行二。\n\n短行三。"
    assert passages[1].text == "长" * 80


def test_headings_of_every_style():
    text = "T\n# 第一部分\n甲" * 1 + "\n（一）办理流程\n乙乙乙\n『壹』 第三\n丙丙丙\n二、第四节\n丁丁丁"
    doc = Document("d", "T", text, "d.md", title_in_text=True)
    headings = [p.heading for p in PassageSplitter(1, 300).split(doc)]
    assert headings == ["第一部分", "（一）办理流程", "『壹』 第三", "二、第四节"]


def test_a_numbered_sentence_is_not_a_heading():
    doc = Document(
        "d", "T", "T\n一、总则\n(一)参保人需持本人社会保障卡到银行激活。\n正文正文。", "d.txt", title_in_text=True
    )
    passages = PassageSplitter(1, 300).split(doc)
    assert passages[0].heading == "一、总则"
    assert passages[0].text.startswith("(一)参保人")
    assert not re.search("^\\(一\\)", passages[0].heading)


def test_a_document_that_is_one_line_is_still_a_passage():
    one_line = Document("d", "整个文档只有这一行内容。", "整个文档只有这一行内容。", "d.txt", title_in_text=True)
    assert [p.text for p in PassageSplitter(1, 300).split(one_line)] == ["整个文档只有这一行内容。"]
    untitled = Document("j", "", "第一行。\n第二行。", "c.jsonl")
    assert [p.text for p in PassageSplitter(10, 300).split(untitled)] == ["第一行。\n第二行。"]


_LINES = st.sampled_from(
    [
        "首页 | 关于我们",
        "版权所有 2024",
        "同一个问题问两次",
        "答案。",
        "短",
        "  首页  |  关于我们 ",
        "医保卡密码忘了怎么办" * 9,
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_LINES, max_size=6), max_size=8), st.integers(min_value=1, max_value=4))
def test_repeated_lines_are_the_short_lines_of_enough_documents(texts, min_documents):
    """Counted as digests, a document at a time, the set is what counting the lines themselves gives."""
    docs = [Document(f"d{i}", "", "\n".join(lines), "x") for i, lines in enumerate(texts)]
    counts = Counter(k for d in docs for k in {line_key(line) for line in d.text.split("\n")})
    chrome = repeated_lines(docs, min_documents)
    for key, n in counts.items():
        expected = n >= min_documents and 6 <= len(key) <= 80 and not key.endswith(("。", "！", "!"))
        assert (key in chrome) is expected, key
    assert "从未出现过的一行文字" not in chrome


_PART_LINES = st.sampled_from(
    [
        "医保卡密码忘了怎么办",
        "一、总则",
        "（二）办理流程",
        "相关文章",
        "• 西安市医保卡密码忘了怎么办",
        "换一批",
        "2024-01-02",
        "版权所有 2024 某某网站",
        "",
        "   ",
        "短句。",
        "忘记医保卡密码可以带上本人身份证和医保卡，到参保地医疗管理中心申请办理密码挂失。",
        "长" * 130,
        "输入错误密码的，必须持有效身份证件原件到社保卡管理中心办理密码重置或解锁业务。" * 4,
        " " * 45,
        "密码。",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(_PART_LINES, st.booleans()), min_size=1, max_size=30),
    st.booleans(),
    st.sampled_from([(1, 300), (50, 300), (10, 40), (20, 25), (4, 12)]),
)
@example([("医保卡密码忘了怎么办", False), (" " * 45, True), ("短句。", False)], False, (4, 12))
def test_a_document_split_in_parts_has_the_passages_of_its_whole_text(cut_lines, titled, sizes):
    """A long file is read and split in parts cut at line ends (the last ``2 * max_chars``
    characters of a part carried into the next): its passages are those of its whole text."""
    lines = [line for line, _ in cut_lines]
    text = "\n".join(lines)
    titled = titled and bool(lines[0].strip())
    title = lines[0].strip() if titled else ""
    # A part ends after each line marked so.
    ends = [sum(len(line) + 1 for line in lines[: i + 1]) for i, (_, cut) in enumerate(cut_lines[:-1]) if cut]
    bounds = [0, *ends, len(text)]
    parts = [
        Document("d", title, text[a:b], "d.txt", title_in_text=titled, base=a, more=b < len(text))
        for a, b in itertools.pairwise(bounds)
    ]
    nonblank = [bool(part.text.strip()) for part in parts]
    # Documented: a title line alone in the first part, the rest blank, is taken for the title.
    if (
        titled
        and len(parts) > 1
        and not any(nonblank[1:])
        and sum(1 for line in parts[0].text.split("\n") if line.strip()) == 1
    ):
        return
    whole = Document("d", title, text, "d.txt", title_in_text=titled)
    splitter = PassageSplitter(*sizes, boilerplate={"版权所有 2024 某某网站"})
    for keep_chrome in (False, True):
        expected = splitter.split(whole, keep_chrome)
        assert splitter.split(parts, keep_chrome) == expected
        assert splitter.count(parts, keep_chrome) == len(expected)
        assert all(p.text == text[p.start : p.end] for p in expected)


def test_a_line_counts_once_per_document_whatever_its_parts_and_a_discarded_document_not_at_all():
    counter = RepeatedLines(min_documents=2)
    counter.add("首页 | 关于我们 | 联系方式\n正文第一部分", more=True)
    counter.add("首页 | 关于我们 | 联系方式\n正文第二部分")  # the same document's last part
    counter.add("版权所有 2024 某某网站", more=True)
    counter.discard()  # a long file that failed part way
    counter.add("版权所有 2024 某某网站")
    counter.add("另一篇文章的内容\n首页 | 关于我们 | 联系方式")
    counter.discard()  # a document found to have no text
    assert "首页 | 关于我们 | 联系方式" not in counter.lines() and "版权所有 2024 某某网站" not in counter.lines()
    counter.add("第三篇\n首页 | 关于我们 | 联系方式")
    assert "首页 | 关于我们 | 联系方式" in counter.lines()
    assert counter.holders(counter.lines()) == [0, 2]


_SENTENCES = st.lists(
    st.sampled_from(["医保卡密码忘了。", "带身份证去银行", "重置。", "保险责任范围", "短句"]), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(
    pages=st.lists(_SENTENCES.map(lambda s: "\n".join(s)), min_size=1, max_size=5),
    sizes=st.sampled_from([(1, 40), (10, 60), (50, 300)]),
)
def test_a_passage_holds_the_text_of_one_page(pages, sizes):
    """A PDF's passages never cross a page break, and each says the page it is on."""
    from search_service.ingest.pdf import PAGE_BREAK

    starts, offset = [], 0
    for text in pages:
        starts.append(offset)
        offset += len(text) + len(PAGE_BREAK)
    doc = Document("d", "", PAGE_BREAK.join(pages), "d.pdf", pages=tuple(starts))
    passages = PassageSplitter(*sizes).split(doc)
    for p in passages:
        assert doc.text[p.start : p.end] == p.text
        assert p.page == doc.page_at(p.start) == doc.page_at(p.end - 1)
    kept = "".join("".join(p.text.split()) for p in passages)
    assert kept == "".join("".join(page.split()) for page in pages)  # no text lost to the boundaries


_CLAUSE = st.text(alphabet="保险合同约定的被保险人受益人给付金额条款期间责任", min_size=30, max_size=200)


@settings(max_examples=200, deadline=None)
@given(
    paragraphs=st.lists(_CLAUSE, min_size=1, max_size=4),
    width=st.integers(min_value=24, max_value=45),
    shared_every=st.integers(min_value=1, max_value=4),
    suffix=st.sampled_from([".txt", ".md", ".pdf", ".jsonl"]),
)
def test_a_shared_line_inside_a_running_paragraph_is_content(paragraphs, width, shared_every, suffix):
    """Paragraphs wrapped as PDF text is (lines of ``width``, each sentence ending its
    paragraph), some of whose lines other documents share: every word stays, whatever the
    format, since no shared line stands alone."""
    wrapped = []
    for para in paragraphs:
        sentence = para + "。"
        wrapped.append([sentence[i : i + width] for i in range(0, len(sentence), width)])
    text = "\n\n".join("\n".join(lines) for lines in wrapped)
    counter = RepeatedLines(min_documents=2)  # the shared lines, counted as reindex counts them
    counter.add(text)
    counter.add("\n".join(line for lines in wrapped for line in lines[::shared_every]))
    doc = Document("d", "", text, "d" + suffix)
    passages = PassageSplitter(50, 300, boilerplate=counter.lines()).split(doc)
    assert "".join("".join(p.text.split()) for p in passages) == "".join(text.split())


def test_a_shared_line_that_stands_alone_is_chrome_on_a_page_only():
    """A menu line other pages share, between paragraphs: chrome on a page (txt, md, html),
    content in a PDF, a Word file or a jsonl record."""
    text = "第一段正文，讲医保卡的办理流程。\n首页 新闻 联系我们\n第二段正文，讲密码重置。"
    menu = {"首页 新闻 联系我们"}
    for source, kept in (("d.txt", False), ("d.html", False), ("d.pdf", True), ("d.docx", True), ("d.jsonl", True)):
        passages = PassageSplitter(10, 300, boilerplate=menu).split(Document("d", "", text, source))
        assert any("首页" in p.text for p in passages) == kept, source


_PROSE = st.sampled_from(
    [
        "医保卡密码忘了可以带身份证去银行重置。",
        "持本人有效证件到社保经办机构办理",
        "挂失后十五个工作日内补卡。",
        "如有疑问请拨打12333咨询，",
        "短句。",
        "好",
        "参保人员应当按时缴纳基本医疗保险费，逾期未缴的暂停享受待遇。" * 3,
    ]
)
_CHROME = st.sampled_from(["换一批", "展开", "0/500", "加密服务已开启", "2024-05-06", "#医疗知识"])


@st.composite
def _documents_with_chrome(draw):
    """A document of headed sections whose lines are pieces of sentences (a sentence may be
    wrapped over several lines), with chrome lines placed anywhere, mid-sentence too."""
    lines = []
    for n in range(draw(st.integers(1, 4))):
        if n or draw(st.booleans()):
            lines.append(f"第{'一二三四'[n]}章 标题")
        lines += [
            draw(_CHROME) if draw(st.integers(0, 3)) == 0 else draw(_PROSE) for _ in range(draw(st.integers(1, 8)))
        ]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(text=_documents_with_chrome(), sizes=st.sampled_from([(50, 300), (10, 40), (20, 60)]))
def test_no_passage_is_a_fragment(text, sizes):
    """No passage is shorter than min_chars unless it is its heading's (or the document's)
    only passage, wherever chrome lines are dropped; none is longer than max_chars; every
    passage is a slice of the text."""
    min_chars, max_chars = sizes
    doc = Document("d", "", text, "d.txt")
    passages = PassageSplitter(min_chars, max_chars).split(doc)
    by_heading = Counter(p.heading for p in passages)
    for p in passages:
        assert doc.text[p.start : p.end] == p.text
        assert len(p.text) <= max_chars
        if len(p.text) < min_chars:
            assert by_heading[p.heading] == 1, (p.text, [q.text for q in passages])


@settings(max_examples=60, deadline=None)
@given(
    paragraphs=st.lists(st.lists(_CLAUSE, min_size=1, max_size=5), min_size=3, max_size=4),
    width=st.integers(min_value=24, max_value=45),
    page_lines=st.integers(min_value=1, max_value=6),
)
def test_long_documents_keep_every_word_and_no_passage_is_furniture(paragraphs, width, page_lines):
    """Documents laid out as PDF text (devtools/longdocs.py): paragraphs wrapped mid-sentence,
    a legal notice every document shares, a footer and a running header at each page break,
    wherever it falls. No passage is page furniture alone; every word of text stays (the
    shared notice too, and a page's text stranded between two page breaks); no passage is
    a fragment.
    (The running header, as long as a line that runs on, is kept: see docs/indexing.md.)"""
    from search_service.devtools.longdocs import FOOTER, HEADER, NOTICE, layout

    texts = [
        layout("", [(f"p{i}", p + "。") for i, p in enumerate(paras)], NOTICE, HEADER, FOOTER, width, page_lines)[0]
        for paras in paragraphs
    ]
    counter = RepeatedLines(min_documents=3)
    for text in texts:
        counter.add(text)
    splitter = PassageSplitter(50, 300, boilerplate=counter.lines())
    for n, text in enumerate(texts):
        passages = splitter.split(Document(f"d{n}", "", text, f"d{n}.txt"))
        footer = re.compile(r"第 \d+ 页 共 \d+ 页")
        # A passage joined across a dropped line holds it (a passage is a slice of the text),
        # but none is chrome alone, and no line of text is lost.
        assert not any(all(footer.fullmatch(x) or x == HEADER for x in p.text.split("\n")) for p in passages)
        kept = [line for p in passages for line in p.text.split("\n") if line != HEADER and not footer.fullmatch(line)]
        content = [line for line in text.split("\n") if line and line != HEADER and not footer.fullmatch(line)]
        assert kept == content, n
        assert "".join(NOTICE.split()) in "".join("".join(kept).split())
        assert all(len(p.text) >= 50 for p in passages) or len(passages) == 1


@settings(max_examples=150, deadline=None)
@given(
    paragraphs=st.lists(st.integers(min_value=60, max_value=280), min_size=2, max_size=5),
    width=st.integers(min_value=24, max_value=45),
)
def test_a_wrapped_paragraph_long_enough_is_a_passage_of_its_own(paragraphs, width):
    """Text wrapped as PDF text is (lines of ``width``, a paragraph's last line ending its
    sentence): each paragraph of ``min_chars`` to ``max_chars`` is one passage, not the
    tail of one and the head of the next."""
    texts = [
        "".join("保险合同约定的给付金额"[(i + n) % 11] for i in range(length - 1)) + "。"
        for n, length in enumerate(paragraphs)
    ]
    lines = [t[i : i + width] for t in texts for i in range(0, len(t), width)]
    doc = Document("d", "", "\n".join(lines), "d.txt")
    passages = PassageSplitter(50, 300).split(doc)
    assert ["".join(p.text.split("\n")) for p in passages] == texts
