"""A long-document form of a judged collection, as text converted from PDF reads.

Each article (the paragraphs that share a title) becomes one document in a file of
its own: its title, then its paragraphs wrapped at :data:`LINE_CHARS` characters a
line (mid-sentence, as PDF text is), one standard paragraph of legal notice that
every document shares, and a footer and running header at every page break (every
:data:`PAGE_LINES` lines, wherever it falls). The judgments follow the paragraphs:
the file qrels.tsv names each query's document, passages.tsv the span of its paragraph
in that document's text, so a ranking can be judged per document and per passage.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opencc

from search_service.devtools.evaluate import read_jsonl, read_qrels
from search_service.errors import InvalidRequest

LINE_CHARS = 40
PAGE_LINES = 30
HEADER = "中文资料汇编（长文档评测版）　内部资料　注意保存"
FOOTER = "第 {page} 页 共 {pages} 页"
NOTICE = (
    "重要声明：本汇编所收录的文字均来源于公开资料，仅供学习、研究与检索评测使用，不构成任何形式的专业意见或承诺。"
    "未经许可，任何单位和个人不得将本汇编的全部或部分内容用于商业目的；如需转载或引用，应注明出处并保持内容完整。"
    "编者已尽合理努力确保内容准确，但对因使用本汇编而产生的任何直接或间接损失不承担责任，相关争议适用中华人民共和国法律。"
)
# A corpus whose characters OpenCC would change this often is in traditional characters:
# its notice and header are converted too.
TRADITIONAL_SHARE = 0.02


@dataclass
class LongCollection:
    """What :func:`build_long_collection` wrote."""

    documents: int
    paragraphs: int
    judged: int
    pages: int
    chars: int
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.documents} documents ({self.paragraphs} paragraphs, {self.pages} pages, "
            f"{self.chars} characters), {self.judged} judged queries"
        )


def read_articles(corpus: Path) -> dict[str, list[tuple[str, str, str]]]:
    """The collection's paragraphs ``(id, title, text)`` grouped by article: those with the
    same non-empty title, in the order of their first appearance (a paragraph without a
    title is an article of its own)."""
    articles: dict[str, list[tuple[str, str, str]]] = {}
    what = "a paragraph with 'id' and 'text'"
    for pid, title, text in read_jsonl(corpus, what, _paragraph):
        articles.setdefault(title or f"\0{pid}", []).append((pid, title, text))
    return articles


def _paragraph(record: dict[str, Any]) -> tuple[str, str, str]:
    return str(record["id"]), str(record.get("title") or "").strip(), str(record["text"])


def is_traditional(texts: list[str]) -> bool:
    sample = "".join(texts)[:200_000]
    simplified = opencc.OpenCC("t2s").convert(sample)
    changed = sum(a != b for a, b in zip(sample, simplified, strict=False))
    return changed > TRADITIONAL_SHARE * max(1, len(sample))


def wrap(text: str, width: int = LINE_CHARS) -> Iterator[str]:
    """``text``'s lines cut every ``width`` characters (its own line breaks kept, white space
    at the ends of a piece dropped)."""
    for piece in text.split("\n"):
        piece = piece.strip()
        for i in range(0, len(piece), width):
            yield piece[i : i + width]


def layout(
    title: str,
    paragraphs: list[tuple[str, str]],
    notice: str,
    header: str,
    footer: str = FOOTER,
    line_chars: int = LINE_CHARS,
    page_lines: int = PAGE_LINES,
) -> tuple[str, dict[str, tuple[int, int]], int]:
    """One document's text, the span of each paragraph (by id) in it, and its pages.

    The notice comes after the middle paragraph; a page's footer and the next page's
    running header interrupt whatever line they fall after, a sentence included."""
    content: list[tuple[str, str]] = [("", title)] if title else []  # (paragraph id or "", line)
    middle = (len(paragraphs) + 1) // 2
    for n, (pid, text) in enumerate(paragraphs, start=1):
        content += [(pid, line) for line in wrap(text, line_chars)]
        if n == middle:
            content += [("", line) for line in wrap(notice, line_chars)]
    pages = max(1, -(-len(content) // page_lines))
    lines: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    length = 0
    for i, (pid, line) in enumerate(content):
        if i and i % page_lines == 0:
            lines += [footer.format(page=i // page_lines, pages=pages), header]
            length += len(lines[-2]) + len(lines[-1]) + 2
        if pid:
            start = spans[pid][0] if pid in spans else length
            spans[pid] = (start, length + len(line))
        lines.append(line)
        length += len(line) + 1
    lines.append(footer.format(page=pages, pages=pages))
    return "\n".join(lines) + "\n", spans, pages


def build_long_collection(
    corpus: str | Path,
    qrels: str | Path,
    out: str | Path,
    *,
    line_chars: int = LINE_CHARS,
    page_lines: int = PAGE_LINES,
) -> LongCollection:
    """Write corpus/<doc>.txt in ``out`` (one file per article), qrels.tsv (query →
    document) and passages.tsv (query → document, start, end of its paragraph)."""
    if line_chars < 1 or page_lines < 1:
        raise InvalidRequest("line_chars and page_lines must be at least 1")
    articles = read_articles(Path(corpus))
    judgments = read_qrels(qrels)
    texts = [text for paragraphs in articles.values() for _, _, text in paragraphs[:1]]
    notice, header, footer = NOTICE, HEADER, FOOTER
    if is_traditional(texts):
        to_traditional = opencc.OpenCC("s2t")
        notice, header, footer = (to_traditional.convert(s) for s in (NOTICE, HEADER, FOOTER))
    root = Path(out)
    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(articles)))
    where: dict[str, tuple[str, int, int]] = {}  # paragraph id -> document, start, end
    report = LongCollection(documents=len(articles), paragraphs=0, judged=0, pages=0, chars=0)
    for n, paragraphs in enumerate(articles.values(), start=1):
        doc_id = f"doc-{n:0{width}d}"
        text, spans, pages = layout(
            paragraphs[0][1], [(pid, t) for pid, _, t in paragraphs], notice, header, footer, line_chars, page_lines
        )
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")
        for pid, (start, end) in spans.items():
            where[pid] = (doc_id, start, end)
        report.paragraphs += len(paragraphs)
        report.pages += pages
        report.chars += len(text)
        report.files.append(f"corpus/{doc_id}.txt")
    with (
        open(root / "qrels.tsv", "w", encoding="utf-8") as by_doc,
        open(root / "passages.tsv", "w", encoding="utf-8") as by_span,
    ):
        for qid, relevant in judgments.items():
            held = sorted(where[pid] for pid in relevant if pid in where)
            if not held:
                continue
            report.judged += 1
            for doc_id in sorted({doc for doc, _, _ in held}):
                by_doc.write(f"{qid}\t{doc_id}\t1\n")
            for doc_id, start, end in held:
                by_span.write(f"{qid}\t{doc_id}\t{start}\t{end}\n")
    return report
