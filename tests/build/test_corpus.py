import codecs

import pytest

from tests.helpers import jsonl, write_corpus
from search_service.build.corpus import CorpusReader, decode
from search_service.errors import CorpusError, DocumentError

SIMP = "医保卡密码忘了怎么办？可以带上本人身份证到医保中心重新设置密码。"
TRAD = "醫保卡密碼輸錯後被鎖住，要去銀行解鎖嗎？三次輸錯一般24小時以後會解鎖。"


def test_encodings_are_detected_and_bad_files_reported(tmp_path):
    root = write_corpus(tmp_path / "c", {
        "gbk.txt": SIMP.encode("gbk"),
        "big5.txt": TRAD.encode("big5"),
        "bom.txt": codecs.BOM_UTF8 + SIMP.encode("utf-8"),
        "gb18030.md": ("# 标题\n\n" + SIMP).encode("gb18030"),
        "empty.txt": b"",
        "blank.txt": b"  \n\n ",
        "binary.txt": bytes(range(256)) * 4,
        "docs.jsonl": jsonl({"id": "a", "title": "甲", "text": SIMP, "category": "faq"})
        + "{not json\n" + jsonl({"id": "b", "text": TRAD}, {"id": "a", "text": "duplicate"}, {"text": "no id"}),
        "ignored.pdf": b"%PDF",
    })
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


def test_html_keeps_visible_text_only(tmp_path):
    root = write_corpus(tmp_path / "c", {"page.html": (
        "<html><head><title>医保卡问答</title><style>p{color:red}</style></head><body>"
        "<script>var x='隐藏';</script><h1>医保卡</h1><p>第一段<b>加粗</b>文字。</p><p>第二段。</p></body></html>")})
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
    corpus = write_corpus(tmp_path / "corpus", {"f.jsonl": jsonl({"id": "a\nb", "text": "医保卡密码。"},
                                                                {"id": "tab\there", "text": "社保卡。"},
                                                                {"id": "c#1", "text": "银行。"})})
    report = CorpusReader(corpus).read()
    assert [d.doc_id for d in report.documents] == ["c#1"]
    assert len(report.skipped) == 2 and all("control character" in e.reason for e in report.skipped)
