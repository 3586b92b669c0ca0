"""Splitting documents into passages.

A passage is a run of the document's own text (``text == doc.text[start:end]``)
of roughly ``min_chars``–``max_chars`` characters: a paragraph, several short
neighbouring lines merged, or a piece of a long paragraph cut at sentence ends.
Each passage remembers the nearest heading above it.

Scraped pages carry boilerplate (view counters, "换一批", "0/500", lists of
related articles, lines repeated across pages); such lines never become
passages.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from array import array
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from search_service.ingest.corpus import Document
from search_service.ingest.gather import ENDS_SENTENCE, RUN_ON_CHARS, SENTENCE_END, SOFT_BREAK, Gatherer, Span

# Headings: 一、… / （一）… / 『壹』… / 第一章 … / # … ; short, on a line of their own.
_HEADING = re.compile(
    r"""^\s*(?:
        \#{1,6}\s+\S
      | [一二三四五六七八九十百]+\s*[、.．]
      | [（(][一二三四五六七八九十]+[)）]
      | 『[壹贰叁肆伍陆柒捌玖拾貳叄參陸]+』
      | 第[一二三四五六七八九十百0-9]+[章节節条條部分篇]
    )""",
    re.VERBOSE,
)
_HEADING_MAX_CHARS = 60

# Interface fragments of scraped pages, matched against a whole (stripped) line.
_UI_LINE = re.compile(
    r"""^(?:
        换一批|換一批|展开|展開|收起|更多>?|查看更多|阅读全文|閱讀全文|点击反馈|【点击反馈】
      | 加密服务已开启|加密服務已開啟|律师服务|律師服務|律师推荐|律師推薦
      | \d+\s*/\s*\d+
      | 第\s*\d+\s*[页頁](?:\s*[,，/]?\s*共\s*\d+\s*[页頁])?  # page numbers: 第 3 页 共 12 页, - 3 -, Page 3 of 12
      | 共\s*\d+\s*[页頁]\s*[,，]?\s*第\s*\d+\s*[页頁]
      | [-—–－]\s*\d+\s*[-—–－]
      | (?:[Pp]age|PAGE)\s*\d+(?:\s*(?:of|/)\s*\d+)?
      | \#\S{1,20}
      | \d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?
      | \d+\s*人(?:看过|看過|阅读|閱讀|浏览|瀏覽)
      | .{0,12}(?:你好|您好)[,，]?请问.{0,20}[?？]
      | (?:来源|來源|作者|时间|時間)\s*[:：].{0,60}
      | (?:声明|聲明)\s*[:：].*
      | (?:扩展|擴展|延伸)(?:阅读|閱讀)\s*[:：].*
      | 上一篇.*|下一篇.*|分享到.*|相关搜索.*|相關搜索.*
    )$""",
    re.VERBOSE,
)
# A line that opens the "related content" part of a scraped page: what follows
# lists other articles and questions (their titles and teasers hold real
# answers), indexed as passages of the related section.
_TRAILER = re.compile(
    r"^(?:更多.{0,12}相关文章|更多.{0,12}相關文章|相关文章|相關文章|相关咨询|相關諮詢|相关阅读|相關閱讀|"
    r"猜你喜欢|猜你喜歡|热门推荐|熱門推薦|推荐阅读|推薦閱讀|延伸阅读|延伸閱讀)\s*$"
)
# An item of a related list: "• 西安市医保卡密码忘了怎么办", the title of the teaser that follows.
_RELATED_ITEM = re.compile(r"^\s*[•·●▪◦○■□\-*]\s*(\S.{0,58})$")


@dataclass(frozen=True)
class Passage:
    """A passage: ``text`` is exactly ``document.text[start:end]``."""

    passage_id: str
    doc_id: str
    ordinal: int
    text: str
    start: int
    end: int
    heading: str
    title: str
    section: str = "main"  # or "related": the page's related articles and questions
    page: int | None = None  # a PDF's page: a passage holds the text of one page


def line_key(line: str) -> str:
    return " ".join(line.split())


class Boilerplate:
    """The set of lines repeated across documents, held as 8-byte digests of their keys
    (``line_key``): ``key in boilerplate`` hashes the key only when it could be one."""

    def __init__(self, digests: frozenset[int] = frozenset(), min_chars: int = 6, max_chars: int = 80) -> None:
        self.digests = digests
        self._min_chars = min_chars
        self._max_chars = max_chars

    def __contains__(self, key: object) -> bool:
        return (
            bool(self.digests)
            and isinstance(key, str)
            and _countable(key, self._min_chars, self._max_chars)
            and _digest(key) in self.digests
        )

    def __len__(self) -> int:
        return len(self.digests)


class RepeatedLines:
    """Counts short lines found in ``min_documents`` documents or more: on scraped pages
    these are navigation, ads and footers. A line ending a sentence (。！) is content
    that documents happen to share, such as an FAQ's standard answer, and is kept;
    so is a line two FAQ entries share (the same question asked twice): below the
    threshold, a repeat is content.

    Documents are added one at a time and only a digest per (document, distinct
    line) is kept, so counting a corpus costs 8 bytes a line, not the corpus's text.
    """

    def __init__(self, min_documents: int = 3, min_chars: int = 6, max_chars: int = 80) -> None:
        self.min_documents = min_documents
        self.min_chars = min_chars
        self.max_chars = max_chars
        self._digests = array("q")
        self._ends = array("q")  # where each document's digests end
        self._open = False  # parts of a document added, its last part not yet

    def add(self, text: str, more: bool = False) -> None:
        """Count a document's lines; with ``more``, ``text`` is a part of it and the rest follows."""
        keys = {line_key(line) for line in text.split("\n")}
        self._digests.extend(_digest(k) for k in keys if _countable(k, self.min_chars, self.max_chars))
        if more:
            self._open = True
            return
        if self._open:  # a line in several parts of one document counts once
            start = self._ends[-1] if self._ends else 0
            distinct = np.unique(np.frombuffer(self._digests[start:], dtype=np.int64))
            del self._digests[start:]
            self._digests.frombytes(distinct.tobytes())
            self._open = False
        self._ends.append(len(self._digests))

    def discard(self) -> None:
        """Forget the document being added (its parts so far), or else the last one added."""
        if not self._open and self._ends:
            self._ends.pop()
        del self._digests[self._ends[-1] if self._ends else 0 :]
        self._open = False

    def lines(self) -> Boilerplate:
        values, counts = np.unique(np.frombuffer(self._digests, dtype=np.int64), return_counts=True)
        return Boilerplate(frozenset(values[counts >= self.min_documents].tolist()), self.min_chars, self.max_chars)

    def holders(self, lines: Boilerplate) -> list[int]:
        """The documents (numbered from 0 as added) holding at least one of ``lines``:
        the only ones ``lines`` split differently than no lines would."""
        if not lines:
            return []
        digests = np.frombuffer(self._digests, dtype=np.int64)
        hits = np.flatnonzero(np.isin(digests, np.fromiter(lines.digests, np.int64, len(lines))))
        holders: list[int] = np.unique(
            np.searchsorted(np.frombuffer(self._ends, np.int64), hits, side="right")
        ).tolist()
        return holders


def repeated_lines(
    documents: Iterable[Document], min_documents: int = 3, min_chars: int = 6, max_chars: int = 80
) -> Boilerplate:
    """The lines of :class:`RepeatedLines` for ``documents``."""
    counter = RepeatedLines(min_documents, min_chars, max_chars)
    for doc in documents:
        counter.add(doc.text)
    return counter.lines()


def _countable(key: str, min_chars: int, max_chars: int) -> bool:
    return min_chars <= len(key) <= max_chars and not key.endswith(("。", "！", "!"))


def _digest(key: str) -> int:
    # Stable across processes and runs (unlike hash()): a forked writer or a later run agrees.
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _runs_on(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= RUN_ON_CHARS and not stripped.endswith(ENDS_SENTENCE) and not is_heading(stripped)


def _stands_alone(line: str, start: int, above: tuple[int, str] | None) -> bool:
    """Whether ``line`` (at ``start``) stands alone, as page furniture does, rather than
    inside a paragraph that runs on around it: the line just above it (``above``: where
    the last non-blank line ended, and its text) does not run on into it (a blank line
    between them ends a paragraph), and it does not run on itself."""
    if above is not None and above[0] + 1 == start and _runs_on(above[1]):
        return False
    return not _runs_on(line)


def is_boilerplate(line: str) -> bool:
    return bool(_UI_LINE.match(line_key(line)))


def is_heading(line: str) -> bool:
    """A short numbered line that is not a sentence: 一、… / （一）… / 『壹』… / # …"""
    stripped = line.strip()
    return (
        len(stripped) <= _HEADING_MAX_CHARS
        and bool(_HEADING.match(stripped))
        and not stripped.endswith(("。", "；", ";"))
    )


def clean_heading(line: str) -> str:
    return line.strip().lstrip("#").strip()


class PassageSplitter:
    """Splits documents into passages of about ``min_chars``–``max_chars`` characters."""

    def __init__(self, min_chars: int = 50, max_chars: int = 300, boilerplate: Container[str] = frozenset()) -> None:
        if min_chars < 1 or max_chars < min_chars:
            raise ValueError("need 1 <= min_chars <= max_chars")
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.boilerplate = boilerplate

    def split(self, doc: Document | Iterable[Document], keep_chrome: bool = False) -> list[Passage]:
        """``doc``'s passages; with ``keep_chrome``, every line is text, those that look like
        page chrome or headings too (for a document that would otherwise have no text left).

        ``doc`` may be given as its parts (:attr:`Document.more`): the passages are those of
        the whole text, made one part at a time."""
        return list(self.passages(doc, keep_chrome))

    def passages(self, doc: Document | Iterable[Document], keep_chrome: bool = False) -> Iterator[Passage]:
        """:meth:`split`'s passages one at a time: a long document's are not all in memory at once."""
        parts = _parts(doc)
        first = next(parts, None)
        if first is None:
            return
        spans = self._spans(itertools.chain((first,), parts), keep_chrome)
        for n, (s, e, h, sec, text, page) in enumerate(spans):
            yield Passage(f"{first.doc_id}#{n}", first.doc_id, n, text, s, e, h, first.title, sec, page)

    def count(self, doc: Document | Iterable[Document], keep_chrome: bool = False) -> int:
        """How many passages :meth:`split` makes of ``doc``."""
        return sum(1 for _ in self._spans(_parts(doc), keep_chrome))

    def _spans(self, parts: Iterator[Document], keep_chrome: bool) -> Iterator[Span]:
        """(start, end, heading, section, text) of each passage, offsets in the whole text.

        A part is split with the end of the part before it (:meth:`.gather.Gatherer.next_part`)."""
        gather = Gatherer(self.min_chars, self.max_chars)
        title_key = ""
        title_skipped = True
        shared: Container[str] = frozenset()  # the lines shared with other documents that may be chrome
        above: tuple[int, str] | None = None  # the last non-blank line: where it ends, its text
        for number, part in enumerate(parts):
            carried = gather.next_part(part)
            window = gather.window
            lines = [(s, e) for s, e in _lines(part.text, carried) if window[s:e].strip()]
            if number == 0:
                title_key = line_key(part.title)
                shared = self.boilerplate if part.page_like else frozenset()
                # The title line is not body text, unless it is all the text there is.
                title_skipped = not (part.title_in_text and (len(lines) > 1 or part.more))
            for start, end in lines:
                line, before = window[start:end], above
                above = (gather.base + end, line)
                page = part.page_at(gather.base + start)
                if page != gather.page:
                    gather.new_page(page)
                key = line_key(line)
                if _TRAILER.match(key):
                    gather.new_group(section="related", heading=key)
                    continue
                if not title_skipped and key == title_key:
                    # The title is indexed as a field of its own; a first line that
                    # is the title is not body text (it still sets the heading).
                    title_skipped = True
                    if is_heading(line):
                        gather.new_group(heading=clean_heading(line))
                    continue
                title_skipped = True
                if not keep_chrome and (
                    is_boilerplate(line) or (key in shared and _stands_alone(line, gather.base + start, before))
                ):
                    gather.drop()
                    continue
                if gather.section == "related" and _RELATED_ITEM.match(line):
                    gather.new_group()  # an item of the list starts a passage: its title, then its teaser
                elif not keep_chrome and is_heading(line):
                    gather.new_group(heading=clean_heading(line))
                    continue
                for piece in self._pieces(window, start, end):
                    gather.add(piece)
                if before is not None and _runs_on(before[1]) and line.strip().endswith(ENDS_SENTENCE):
                    # The last line of a wrapped paragraph (a sentence ends after a line that
                    # ran on into it): the next line starts another paragraph.
                    gather.end_paragraph()
                yield from gather.take()
            gather.end_part()
            yield from gather.take()
        yield from gather.finish()

    def _pieces(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """One line as pieces of at most max_chars, cut at sentence ends where possible."""
        # Trim the line's surrounding white space: offsets point at real text.
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end - start <= self.max_chars:
            return [(start, end)]
        sentences = _cut(text, start, end, SENTENCE_END)
        pieces: list[tuple[int, int]] = []
        for s, e in sentences:
            if e - s > self.max_chars:
                for s2, e2 in _cut(text, s, e, SOFT_BREAK):
                    pieces.extend(_hard_split(s2, e2, self.max_chars))
            else:
                pieces.append((s, e))
        # Greedy packing of sentences into passages no longer than max_chars.
        packed: list[tuple[int, int]] = []
        for s, e in pieces:
            if packed and e - packed[-1][0] <= self.max_chars:
                packed[-1] = (packed[-1][0], e)
            else:
                packed.append((s, e))
        return packed


def _parts(doc: Document | Iterable[Document]) -> Iterator[Document]:
    """A document, or the parts of a long one, as its parts."""
    return iter((doc,) if isinstance(doc, Document) else doc)


def _lines(text: str, pos: int = 0) -> list[tuple[int, int]]:
    """Each line's (start, end), from ``pos`` on."""
    out = []
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def _cut(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    out = []
    s = start
    for m in pattern.finditer(text, start, end):
        out.append((s, m.end()))
        s = m.end()
    if s < end:
        out.append((s, end))
    return [(a, b) for a, b in out if text[a:b].strip()]


def _hard_split(start: int, end: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, end)) for s in range(start, end, size)]
