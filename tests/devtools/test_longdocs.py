"""The long-document form of a judged collection (devtools/longdocs.py, scripts/longdocs.py)."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from search_service.devtools.evaluate import read_qrels, read_spans
from search_service.devtools.longdocs import FOOTER, HEADER, NOTICE, build_long_collection, layout, wrap
from tests.helpers import load_script

_PARAGRAPH = st.text(alphabet="保险合同约定的被保险人受益人给付金额条款期间责任。，", min_size=1, max_size=300)
_FOOTER = re.compile(r"^第 \d+ 页 共 \d+ 页$")


@settings(max_examples=200, deadline=None)
@given(
    paragraphs=st.lists(_PARAGRAPH.filter(str.strip), min_size=1, max_size=5),
    line_chars=st.integers(min_value=5, max_value=60),
    page_lines=st.integers(min_value=1, max_value=12),
    titled=st.booleans(),
)
def test_a_paragraphs_span_holds_its_text_and_page_breaks_only(paragraphs, line_chars, page_lines, titled):
    """Each paragraph's span, without the page breaks that fall in it (a footer and the next
    page's header) and without line breaks, is the paragraph; every content line is at most
    ``line_chars`` long; each page has ``page_lines`` content lines but the last, and ends in
    its footer."""
    ids = [f"p{i}" for i in range(len(paragraphs))]
    text, spans, pages = layout(
        "标题" if titled else "",
        list(zip(ids, paragraphs, strict=True)),
        NOTICE,
        HEADER,
        FOOTER,
        line_chars,
        page_lines,
    )
    assert set(spans) == set(ids)
    for pid, paragraph in zip(ids, paragraphs, strict=True):
        start, end = spans[pid]
        lines = [line for line in text[start:end].split("\n") if line != HEADER and not _FOOTER.match(line)]
        assert "".join(lines) == "".join(piece.strip() for piece in paragraph.split("\n"))
    lines = text.rstrip("\n").split("\n")
    assert lines[-1] == FOOTER.format(page=pages, pages=pages)
    assert [line for line in lines if _FOOTER.match(line)] == [
        FOOTER.format(page=n, pages=pages) for n in range(1, pages + 1)
    ]
    content = [line for line in lines if line != HEADER and not _FOOTER.match(line)]
    assert all(len(line) <= line_chars for line in content[1 if titled else 0 :])
    assert -(-len(content) // page_lines) == pages


def test_wrap_cuts_every_width_characters_and_keeps_line_breaks():
    assert list(wrap("一二三四五\n六七", 2)) == ["一二", "三四", "五", "六七"]


def _collection(tmp_path, rows, qrels):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    judged = tmp_path / "qrels.tsv"
    judged.write_text("".join(f"{q}\t{d}\t1\n" for q, d in qrels), encoding="utf-8")
    return corpus, judged


def test_an_articles_paragraphs_become_one_document_judged_by_document_and_span(tmp_path):
    rows = [
        {"id": "a-1", "title": "梵文", "text": "梵語的學術研究由德國學者開創。" * 5},
        {"id": "b-1", "title": "元代", "text": "元朝是蒙古人建立的王朝。" * 4},
        {"id": "a-2", "title": "梵文", "text": "梵語在社交中口頭使用。" * 6},
        {"id": "c-1", "title": "", "text": "沒有標題的段落。"},
    ]
    corpus, qrels = _collection(tmp_path, rows, [("q1", "a-2"), ("q2", "b-1"), ("q3", "missing")])
    out = tmp_path / "long"
    report = build_long_collection(corpus, qrels, out, line_chars=20, page_lines=4)
    assert (report.documents, report.paragraphs, report.judged) == (3, 4, 2)
    texts = {p.stem: p.read_text(encoding="utf-8") for p in (out / "corpus").iterdir()}
    assert sorted(texts) == ["doc-1", "doc-2", "doc-3"]
    assert texts["doc-1"].startswith("梵文\n")
    # A traditional collection's shared lines are in traditional characters too.
    assert "重要聲明" in texts["doc-1"] and "中文資料彙編" in texts["doc-1"] and "頁" in texts["doc-1"]
    assert read_qrels(out / "qrels.tsv") == {"q1": {"doc-1"}, "q2": {"doc-2"}}
    spans = read_spans(out / "passages.tsv")
    assert set(spans) == {"q1", "q2"}
    ((doc, start, end),) = spans["q1"]
    held = "".join(line for line in texts[doc][start:end].split("\n") if not line.startswith(("第 ", "中文資料彙編")))
    assert doc == "doc-1" and held == rows[2]["text"]


def test_the_script_is_the_command(tmp_path, capsys):
    corpus, qrels = _collection(tmp_path, [{"id": "x", "title": "标题", "text": "正文。"}], [("q", "x")])
    script = load_script("longdocs")
    assert script.main(["--corpus", str(corpus), "--qrels", str(qrels), "--out", str(tmp_path / "o")]) == 0
    assert "1 documents (1 paragraphs" in capsys.readouterr().out
    assert (tmp_path / "o" / "corpus" / "doc-1.txt").read_text(encoding="utf-8").startswith("标题\n正文。\n重要声明")
