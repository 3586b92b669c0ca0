import codecs
import dataclasses
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_service.errors import CorpusError, DocumentError
from search_service.ingest.corpus import CorpusReader, Document, decode
from tests.helpers import jsonl, write_corpus

SIMP = "医保卡密码忘了怎么办？可以带上本人身份证到医保中心重新设置密码。"
TRAD = "醫保卡密碼輸錯後被鎖住，要去銀行解鎖嗎？三次輸錯一般24小時以後會解鎖。"


def test_encodings_are_detected_and_bad_files_reported(tmp_path):
    root = write_corpus(
        tmp_path / "c",
        {
            "gbk.txt": SIMP.encode("gbk"),
            "big5.txt": TRAD.encode("big5"),
            "bom.txt": codecs.BOM_UTF8 + SIMP.encode("utf-8"),
            "gb18030.md": ("# 标题\n\n" + SIMP).encode("gb18030"),
            "empty.txt": b"",
            "blank.txt": b"  \n\n ",
            "binary.txt": bytes(range(256)) * 4,
            "docs.jsonl": jsonl({"id": "a", "title": "甲", "text": SIMP, "category": "faq"})
            + "{not json\n"
            + jsonl({"id": "b", "text": TRAD}, {"id": "a", "text": "duplicate"}, {"text": "no id"}),
            "ignored.pdf": b"%PDF",
        },
    )
    report = CorpusReader(root).read()
    docs = {d.doc_id: d for d in report.documents}
    assert docs["gbk"].text == SIMP and docs["gbk"].encoding == "gb18030"
    assert docs["big5"].text == TRAD and docs["big5"].encoding.startswith("big5")
    assert docs["bom"].text == SIMP and docs["bom"].encoding == "utf-8-sig"
    assert docs["gb18030"].title == "标题"
    assert docs["a"].title == "甲" and docs["a"].metadata == {"category": "faq"}
    assert docs["b"].title == ""  # jsonl: the title is the `title` key, if any
    assert set(docs) == {"gbk", "big5", "bom", "gb18030", "a", "b"}
    skipped = {e.source: e.reason for e in report.skipped}
    assert skipped["empty.txt"] == "empty file"
    assert skipped["blank.txt"] == "empty file"
    assert skipped["binary.txt"].startswith("binary file")
    assert "malformed JSON" in skipped["docs.jsonl:2"]
    assert "duplicate document id 'a'" in skipped["docs.jsonl"] or any("duplicate" in r for r in skipped.values())
    assert "missing 'id'" in skipped["docs.jsonl:5"]
    assert skipped["ignored.pdf"].startswith("cannot read the PDF")


def test_html_keeps_visible_text_only(tmp_path):
    root = write_corpus(
        tmp_path / "c",
        {
            "page.html": (
                "<html><head><title>医保卡问答</title><style>p{color:red}</style></head><body>"
                "<script>var x='隐藏';</script><h1>医保卡</h1><p>第一段<b>加粗</b>文字。</p>"
                "<p>第二段。</p></body></html>"
            )
        },
    )
    doc = CorpusReader(root).read().documents[0]
    assert doc.title == "医保卡问答"
    assert doc.text == "医保卡\n第一段加粗文字。\n第二段。"
    assert "隐藏" not in doc.text and "color" not in doc.text


def test_ids_are_relative_paths_without_extension(tmp_path):
    root = write_corpus(tmp_path / "c", {"faq/a.txt": "标题\n正文", "b.md": "正文"})
    assert [d.doc_id for d in CorpusReader(root).read().documents] == ["b", "faq/a"]


def test_missing_or_non_folder_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        CorpusReader(tmp_path / "nope").read()
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="not a folder"):
        CorpusReader(tmp_path / "file").read()


def test_undecodable_bytes_are_reported():
    with pytest.raises(DocumentError):
        decode(b"\xff\xfe\xfd" * 3 + b"\x81", "x.txt") if False else decode(b"\x00\x01\x02binary", "x.txt")


def test_ids_with_control_characters_are_reported_and_skipped(tmp_path):
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "f.jsonl": jsonl(
                {"id": "a\nb", "text": "医保卡密码。"},
                {"id": "tab\there", "text": "社保卡。"},
                {"id": "c#1", "text": "银行。"},
            )
        },
    )
    report = CorpusReader(corpus).read()
    assert [d.doc_id for d in report.documents] == ["c#1"]
    assert len(report.skipped) == 2 and all("control character" in e.reason for e in report.skipped)


def test_a_first_line_longer_than_a_heading_is_not_a_title(tmp_path):
    from search_service.ingest.passages import PassageSplitter

    line = "医保卡密码忘了可以带身份证去银行重置" * 16_000  # ~300 KB, no line break, no punctuation
    root = write_corpus(tmp_path / "c", {"long.txt": line, "short.txt": "短标题\n正文第一段。"})
    docs = {d.doc_id: d for d in CorpusReader(root).read().documents}
    assert docs["long"].title == "" and not docs["long"].title_in_text
    assert docs["short"].title == "短标题"
    passages = PassageSplitter(50, 300).split(docs["long"])
    assert "".join(p.text for p in passages) == line  # cut at the maximum length, nothing lost
    assert all(len(p.text) <= 300 and p.title == "" for p in passages)


DATA = Path(__file__).parent / "data"


def image_only_pdf() -> bytes:
    """A one-page PDF holding an image and no text: what a scanner makes."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(300, 200)
    image = pdfium.PdfImage.new(pdf)
    image.set_bitmap(pdfium.PdfBitmap.new_native(60, 40, pdfium.raw.FPDFBitmap_BGR))
    image.set_matrix(pdfium.PdfMatrix().scale(60, 40).translate(20, 20))
    page.insert_obj(image)
    page.gen_content()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def word_file() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "社保卡办理须知"
    document.add_heading("一、激活", level=1)
    document.add_paragraph("社保卡需要本人持身份证到银行网点激活。")
    document.add_heading("二、挂失", level=2)
    document.add_paragraph("丢失后拨打96102挂失，再到网点补办。")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "服务热线", "12333"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_pdf_and_word_documents(tmp_path):
    """A two-page Chinese PDF (printed by Chromium from two-pages.html), a Word file, a
    scanned PDF, an encrypted one and broken ones: the first two read, with pages and
    headings; the others reported."""
    from search_service.ingest.passages import PassageSplitter

    root = write_corpus(
        tmp_path / "c",
        {
            "guide.pdf": (DATA / "two-pages.pdf").read_bytes(),
            "notice.docx": word_file(),
            "scan.pdf": image_only_pdf(),
            "broken.pdf": b"%PDF-1.4 garbage",
            # page 1 of two-pages.pdf, AES-encrypted with a user password (pypdf)
            "locked.pdf": (DATA / "encrypted.pdf").read_bytes(),
            "broken.docx": b"PK not a zip",
        },
    )
    report = CorpusReader(root).read()
    docs = {d.doc_id: d for d in report.documents}
    skipped = {e.source: e.reason for e in report.skipped}
    assert set(docs) == {"guide", "notice"}
    assert "no text layer" in skipped["scan.pdf"] and skipped["broken.pdf"].startswith("cannot read the PDF")
    assert skipped["locked.pdf"] == "encrypted PDF (it needs a password), not read"
    assert skipped["broken.docx"].startswith("cannot read the Word file")
    guide = docs["guide"]
    assert guide.title == "医保卡办理指南" and guide.pages == (0, guide.text.index("二、社保卡激活"))
    passages = PassageSplitter(20, 300).split(guide)
    by_page = {p.page: p for p in passages}
    assert "九六一零二" in by_page[1].text and "醫保卡密碼輸錯三次" in by_page[2].text
    assert by_page[2].heading == "二、社保卡激活"
    notice = docs["notice"]
    assert notice.title == "社保卡办理须知"
    notice_passages = PassageSplitter(1, 300).split(notice)
    assert [(p.heading, p.text) for p in notice_passages] == [
        ("一、激活", "社保卡需要本人持身份证到银行网点激活。"),
        ("二、挂失", "丢失后拨打96102挂失，再到网点补办。"),
        ("二、挂失", "服务热线\t12333"),
    ]
    assert all(p.page is None for p in notice_passages)


def test_html_main_text_without_navigation_sidebar_and_footer(tmp_path):
    from search_service.ingest.passages import PassageSplitter

    root = write_corpus(tmp_path / "c", {"page.html": (DATA / "chrome-page.html").read_bytes()})
    doc = CorpusReader(root).read().documents[0]
    assert doc.title == "医保卡密码忘了怎么办"  # the <title> without the site's name
    for chrome in ("首页", "关于我们", "热门文章", "公积金怎么提取", "版权所有", "ICP"):
        assert chrome not in doc.text, chrome
    passages = PassageSplitter(20, 300).split(doc)
    assert [p.heading for p in passages] == ["医保卡密码忘了怎么办", "一、如何重置", "二、注意事项"]
    assert passages[0].text.startswith("忘记医保卡密码")  # the <h1> heads it, not repeated as text
    assert all(doc.text[p.start : p.end] == p.text for p in passages)


SHORT_PAGE = (
    "<html><head><title>社保卡补办</title></head><body>"
    "<header><a href='/'>网站首页</a> <a href='/a'>关于我们</a> <a href='/m'>网站地图</a></header>"
    "<nav><ul><li>新闻中心</li><li>办事指南</li></ul></nav>"
    "<div role='navigation'><div><a>政策法规</a></div></div>"
    "<div class='main'><h1>社保卡补办</h1><p>社保卡丢失后请先拨打12333挂失，再带本人身份证到"
    "合作银行网点办理补卡手续，新卡一般十个工作日内可以领取。补卡工本费按当地标准收取，"
    "部分城市可在手机上预约办理。如有疑问请咨询当地社保经办机构。</p></div>"
    "<aside>热门文章：公积金怎么提取</aside><div class='site-footer'>版权所有 京ICP备12345678号</div>"
    "</body></html>"
)


def test_a_short_pages_furniture_is_never_main_text(tmp_path, make_settings):
    """A page under the extractor's threshold is read without its header, nav, aside,
    footer and role or class marked menus: they are neither text nor found."""
    from search_service.ingest.html import MIN_EXTRACTED_CHARS, _parse
    from search_service.ingest.reindex import build_index
    from search_service.search.request import SearchRequest
    from search_service.search.service import SearchService

    visible = "".join("".join(_parse(SHORT_PAGE).parts).split())
    assert 140 < len(visible) < MIN_EXTRACTED_CHARS  # a short page: the extractor's fallback reads it
    root = write_corpus(tmp_path / "corpus", {"page.html": SHORT_PAGE})
    doc = CorpusReader(root).read().documents[0]
    for chrome in ("网站首页", "关于我们", "网站地图", "新闻中心", "政策法规", "热门文章", "版权所有"):
        assert chrome not in doc.text, chrome
    assert "社保卡丢失后请先拨打12333挂失" in doc.text
    settings = make_settings(root)
    build_index(settings)
    service = SearchService(settings)
    assert service.search(SearchRequest.create(settings, q="关于我们 网站地图")).total == 0
    assert service.search(SearchRequest.create(settings, q="补卡手续")).hits[0].doc_id == "page"


def test_a_page_of_furniture_only_is_read_whole(tmp_path):
    root = write_corpus(tmp_path / "c", {"nav.html": "<html><body><nav>办事指南 医保卡密码重置</nav></body></html>"})
    assert CorpusReader(root).read().documents[0].text == "办事指南 医保卡密码重置"


def test_html_of_any_depth_is_read(tmp_path):
    deep = (
        "<html><body>"
        + "<div>" * 20_000
        + "<p>深层的文字也要索引，比如医保卡密码重置的办法。</p>"
        + "</div>" * 20_000
        + "</body></html>"
    )
    root = write_corpus(tmp_path / "c", {"deep.html": deep})
    doc = CorpusReader(root).read().documents[0]
    assert doc.text == "深层的文字也要索引，比如医保卡密码重置的办法。"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                jsonl({"id": "a", "title": "甲", "text": SIMP, "tag": "faq"}).rstrip("\n"),
                jsonl({"id": "b", "text": "第一行\r\n第二行"}).rstrip("\n"),
                jsonl({"id": "a", "text": "duplicate"}).rstrip("\n"),
                "{not json",
                "[1, 2]",
                "",
                "   ",
                jsonl({"text": "no id"}).rstrip("\n"),
            ]
        ),
        max_size=8,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_a_utf8_collection_read_a_line_at_a_time_reads_as_a_whole_file_would(tmp_path_factory, lines, newline):
    """UTF-8 collections are read a line at a time; a GBK one is read whole: the same documents,
    errors and line numbers either way."""
    root = tmp_path_factory.mktemp("c")
    text = newline.join(lines) + newline
    streamed = root / "docs.jsonl"
    if not text.strip():
        return
    streamed.write_bytes(text.encode("utf-8"))
    whole = root / "gbk" / "docs.jsonl"
    whole.parent.mkdir()
    whole.write_bytes(text.encode("gb18030"))

    def read(path: Path) -> list:
        return [
            (type(i).__name__, str(i) if isinstance(i, DocumentError) else (i.doc_id, i.title, i.text, i.metadata))
            for i in CorpusReader(path).items()
        ]

    assert read(streamed) == read(whole)


def test_only_plain_utf8_text_is_read_a_line_at_a_time(tmp_path):
    from search_service.ingest.corpus import _plain_utf8

    cases = {
        "utf8": SIMP.encode("utf-8"),
        "bom": codecs.BOM_UTF8 + SIMP.encode("utf-8"),
        "gbk": SIMP.encode("gbk"),
        "nul": b'{"id": 1}\x00\n',
        "blank": b" \n\n",
        "empty": b"",
        "cut": SIMP.encode("utf-8")[:-1],
        "utf16": codecs.BOM_UTF16_LE + SIMP.encode("utf-16-le"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert {name for name in cases if _plain_utf8(tmp_path / name)} == {"utf8"}


def test_a_collection_that_stops_being_utf8_while_read_is_reported_not_a_traceback(tmp_path, monkeypatch):
    """Checked as UTF-8, then read a line at a time: a file rewritten in between (a sync into the
    corpus folder) is reported, the rest of the folder read."""
    from search_service.ingest import corpus as corpus_module

    root = write_corpus(tmp_path / "c", {"a.txt": SIMP})
    (root / "docs.jsonl").write_bytes(
        (jsonl({"id": "x", "text": SIMP}) + jsonl({"id": "y", "text": TRAD})).encode("utf-8")
        + b'{"id": "z", "text": "\xff"}\n'
    )
    monkeypatch.setattr(corpus_module, "_plain_utf8", lambda path: True)  # as if checked before the rewrite
    report = CorpusReader(root).read()
    assert next(d.doc_id for d in report.documents) == "a"
    assert [(e.source, e.reason.split(" (")[0]) for e in report.skipped] == [
        ("docs.jsonl", "the file changed while it was read")
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["医保卡密码忘了怎么办", "", "  ", "# 第一章 总则", "长" * 70, "短。", "一行\r二行"]),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from([".txt", ".md"]),
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "big5", "utf-16"]),
)
def test_a_long_text_file_is_read_in_parts_that_make_its_whole_text(tmp_path_factory, lines, newline, suffix, encoding):
    """A text file above PART_BYTES is read in parts of about PART_CHARS characters, cut at line
    ends (a line longer than a part where the part ends): the parts' texts, one after the other,
    are the text the whole file reads as, and each part says where it starts."""
    from search_service.ingest import corpus as corpus_module

    text = newline.join(lines)
    if not text.strip():
        return
    root = tmp_path_factory.mktemp("c")
    if encoding == "big5":
        text = text.translate(str.maketrans("医码么总则长办", "醫碼麼總則長辦"))  # Big5: traditional characters only
    (root / f"long{suffix}").write_bytes(text.encode(encoding))
    whole = CorpusReader(root).read()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(corpus_module, "PART_BYTES", 0)
        patch.setattr(corpus_module, "PART_CHARS", 128)  # above a title's length, as in use
        parts = list(CorpusReader(root).items())
    if whole.skipped:  # too little text to tell its encoding: the same reason either way
        assert [(d.source, d.reason) for d in whole.skipped] == [(d.source, d.reason) for d in parts]
        return
    (doc,) = whole.documents
    assert all(isinstance(p, Document) for p in parts) and {p.encoding for p in parts} == {doc.encoding}
    assert "".join(p.text for p in parts) == doc.text
    assert [p.base for p in parts] == [sum(len(q.text) for q in parts[:i]) for i in range(len(parts))]
    assert [p.more for p in parts] == [True] * (len(parts) - 1) + [False]
    assert all(len(p.text) <= 2 * 128 and (p.text.endswith("\n") or len(p.text) >= 128) for p in parts[:-1])
    first_part_title = corpus_module.markdown_title(parts[0].text) if suffix == ".md" else doc.title
    assert {(p.doc_id, p.title, p.source, p.title_in_text) for p in parts} == {
        (doc.doc_id, first_part_title, doc.source, bool(first_part_title))
    }
    if len(text) > 400:
        assert len(parts) > 1
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(corpus_module, "PART_BYTES", 0)
            patch.setattr(corpus_module, "PART_CHARS", 128)
            # read() joins them; a Markdown title is looked for in the first part (docs/indexing.md).
            assert CorpusReader(root).read().documents == [
                dataclasses.replace(doc, title=first_part_title, title_in_text=bool(first_part_title))
            ]


def test_a_long_file_that_does_not_decode_in_one_encoding_is_read_whole(tmp_path):
    """Its first megabyte says GB18030, a later byte is not: read whole, :func:`decode` says why."""
    from search_service.ingest.corpus import _long_text_encoding

    good = ("医保卡密码忘了可以带身份证去银行重置。\n" * 40_000).encode("gb18030")
    cases = {
        "gbk.txt": good,
        "broken.txt": good + b"\xff\xfe\xff\n" + good,
        "blank.txt": b"\n \n" * 1000,
        "utf8.txt": good.decode("gb18030").encode("utf-8"),
        "bom.txt": codecs.BOM_UTF8 + b"\xe5\x8c\xbb\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert {name: _long_text_encoding(tmp_path / name) for name in cases} == {
        "gbk.txt": "gb18030",
        "broken.txt": None,
        "blank.txt": None,
        "utf8.txt": "utf-8",
        "bom.txt": "utf-8-sig",
    }


def test_a_long_pages_text_is_the_text_a_reader_sees_escapes_and_all():
    """Main-content extraction keeps characters as the page shows them: `a < b` stays (no
    Markdown escape before it), `&amp;lt;tag&amp;gt;` reads `&lt;tag&gt;` (unescaped once,
    not twice), `*` and `_` stay; headings, list items and table rows are lines (issue 38, 9)."""
    from search_service.ingest.html import MIN_EXTRACTED_CHARS, html_document

    paragraph = "<p>公式 a &lt; b 和 &amp;lt;tag&amp;gt; 的写法，*星号* 与 snake_case 都照原样显示，正文继续。</p>"
    html = (
        "<html><head><title>转义</title></head><body><article><h2>小标题</h2>"
        + paragraph * 6
        + "<ul><li>第一项内容</li><li>第二项内容</li></ul>"
        + "<table><tr><td>甲</td><td>乙</td></tr></table></article></body></html>"
    )
    assert len(html) > MIN_EXTRACTED_CHARS
    _, text = html_document(html)
    lines = text.split("\n")
    assert "公式 a < b 和 &lt;tag&gt; 的写法，*星号* 与 snake_case 都照原样显示，正文继续。" in lines
    assert "\\" not in text
    assert lines[0].lstrip("# ") == "小标题" and lines[0].startswith("#")
    assert "• 第一项内容" in lines and "• 第二项内容" in lines
    assert any(line.split() == ["甲", "乙"] for line in lines)
