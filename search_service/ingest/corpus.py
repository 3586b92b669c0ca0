"""Reading the corpus folder into documents.

Formats: ``.txt``, ``.md``, ``.html``/``.htm`` (visible text only),
``.jsonl`` (one document a line), ``.pdf`` (:mod:`.pdf`) and ``.docx``
(:mod:`.word`). Encodings are detected, not guessed: UTF-8
(with or without BOM) first, then charset-normalizer restricted to the
encodings Chinese text actually comes in (GB18030/GBK, Big5, UTF-16/32).
A file that cannot be read is reported with its reason and skipped.
"""

from __future__ import annotations

import bisect
import codecs
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_service.errors import CorpusError, DocumentError

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl", ".pdf", ".docx")
PAGE_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
# Chinese text comes in these; letting the detector pick among all code pages
# mistakes short GBK text for Korean cp949.
CANDIDATE_ENCODINGS = ["utf_8", "gb18030", "big5", "big5hkscs", "utf_16", "utf_32"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


@dataclass
class Document:
    """A document of the corpus, or a part of one; ``text`` is what passage offsets refer to."""

    doc_id: str
    title: str
    text: str
    source: str
    encoding: str = "utf-8"
    metadata: dict[str, Any] = field(default_factory=dict)
    # The title is a line of the text (txt, md, html's first block) rather
    # than a separate field (jsonl): that line is not body text.
    title_in_text: bool = False
    # A PDF's pages: the offset in ``text`` where each starts (page 1 first).
    pages: tuple[int, ...] = ()
    # A long text file is read in parts, each a Document: ``base`` is where this part's
    # text starts in the whole text (what passage offsets refer to), ``more`` says another
    # part follows. Title, source and metadata are the document's, in every part.
    base: int = 0
    more: bool = False

    @property
    def page_like(self) -> bool:
        """Whether the document is a page as scraped or saved (text, Markdown, HTML), whose
        lines shared with other documents may be page chrome. A PDF's, a Word file's or a
        jsonl record's text is the document's own: a line it shares is content."""
        return self.source.lower().endswith(PAGE_SUFFIXES)

    def page_at(self, offset: int) -> int | None:
        """The page (from 1) holding ``offset``; None for a document without pages."""
        if not self.pages:
            return None
        return bisect.bisect_right(self.pages, offset)

    @property
    def content_hash(self) -> str:
        payload = json.dumps([self.title, self.text, self.source, self.metadata], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass
class CorpusReport:
    """What was read and what was skipped (source, reason)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[DocumentError] = field(default_factory=list)


def decode(data: bytes, source: str) -> tuple[str, str]:
    """Bytes → (text with \\n newlines, encoding name). Raises DocumentError."""
    if not data.strip():
        raise DocumentError(source, "empty file")
    if data.startswith(codecs.BOM_UTF8):
        text, encoding = data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    else:
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        if b"\x00" in data and not utf16:
            raise DocumentError(source, "binary file (contains NUL bytes)")
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            import charset_normalizer  # only for non-UTF-8 files; keeps serving start-up light

            best = charset_normalizer.from_bytes(data, cp_isolation=CANDIDATE_ENCODINGS).best()
            if best is None:
                raise DocumentError(source, "cannot detect the text encoding (not UTF-8, GB18030 or Big5)") from None
            text, encoding = str(best), best.encoding
    if _looks_binary(text):
        raise DocumentError(source, "binary file (mostly control characters)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(source, "empty file")
    return text, encoding


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return controls > max(8, len(sample) // 20)


# A title is a heading: a first line longer than this is text, not a title (a file
# with no line breaks would otherwise store itself as the title of every passage).
TITLE_MAX_CHARS = 100


def first_line(text: str) -> str:
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        line = text[start:end].strip()
        if line:
            return line
        start = end + 1
    return ""


def bounded_title(title: str) -> str:
    return title if len(title) <= TITLE_MAX_CHARS else ""


def markdown_title(text: str) -> str:
    for m in re.finditer(r"^.*$", text, re.M):
        heading = _MD_HEADING.match(m.group())
        if heading:
            return bounded_title(heading.group(1))
    return bounded_title(first_line(text))


class CorpusReader:
    """Reads a corpus folder recursively; ``exclude`` names files that are not documents
    (the user dictionary, stopwords and synonyms may live in the corpus folder)."""

    def __init__(self, root: str | os.PathLike[str], exclude: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.root = Path(root)
        self.exclude = {Path(p).resolve() for p in exclude if p}
        # Files under the folder that are not read, each with its reason: every file is
        # either indexed or reported.
        self.not_read: list[DocumentError] = []

    def files(self) -> list[Path]:
        if not self.root.exists():
            raise CorpusError(f"corpus folder {str(self.root)!r} does not exist")
        if self.root.is_file() and self.root.suffix.lower() in SUFFIXES:
            return [self.root]  # a single file, such as one jsonl collection
        if not self.root.is_dir():
            raise CorpusError(f"corpus path {str(self.root)!r} is not a folder or a corpus file")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise CorpusError(f"corpus folder {str(self.root)!r} is not readable")
        found = []
        self.not_read = []
        root = self.root.resolve()
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=_raise_corpus_error):
            for name in sorted(dirnames):
                path = Path(dirpath) / name
                if path.is_symlink():  # os.walk does not descend into it: say so
                    self._not_read(path, "a symbolic link to a folder, not followed")
                elif name.startswith("."):
                    self._not_read(path, "a hidden folder, not read")
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (Path(dirpath) / d).is_symlink())
            for name in sorted(filenames):
                path = Path(dirpath) / name
                reason = self._why_not(path, root)
                if reason is None:
                    found.append(path)
                elif reason:
                    self._not_read(path, reason)
        return found

    def _why_not(self, path: Path, root: Path) -> str | None:
        """Why ``path`` is not read as a document (None: it is; "": it is a settings file)."""
        try:
            path.name.encode("utf-8")
        except UnicodeEncodeError:
            return "the file name is not valid UTF-8; rename it"
        target = path.resolve()
        if target in self.exclude:
            return ""  # the user dictionary, stopwords or synonyms
        if not target.is_relative_to(root):
            return "a symbolic link to a file outside the corpus folder, not followed"
        if path.name.startswith("."):
            return "a hidden file, not read"
        if path.suffix.lower() not in SUFFIXES:
            return f"unsupported file type {path.suffix.lower() or '(no extension)'!r}"
        return None

    def _not_read(self, path: Path, reason: str) -> None:
        rel = os.fsdecode(path.relative_to(self.root)).encode("utf-8", "backslashreplace").decode("utf-8")
        self.not_read.append(DocumentError(rel, reason))

    def read(self, progress: Callable[[int, int], Any] | None = None) -> CorpusReport:
        """Every document of the folder in memory (a long file's parts joined into one);
        ``progress(files read, files)`` as it goes."""
        report = CorpusReport()
        for item in self.items(progress):
            if isinstance(item, DocumentError):
                if report.documents and report.documents[-1].more:  # a long file failed part way
                    report.documents.pop()
                report.skipped.append(item)
            elif item.base:
                last = report.documents[-1]
                report.documents[-1] = dataclasses.replace(last, text=last.text + item.text, more=item.more)
            else:
                report.documents.append(item)
        return report

    def items(self, progress: Callable[[int, int], Any] | None = None) -> Iterator[Document | DocumentError]:
        """Every document of the folder, one at a time, and every file, line or document
        not read, with its reason; ``progress(files read, files)`` as it goes."""
        seen: dict[str, str] = {}
        files = self.files()
        yield from self.not_read
        for number, path in enumerate(files, start=1):
            if progress is not None:
                progress(number, len(files))
            rejected = False
            for item in self.read_file(path):
                if isinstance(item, DocumentError):
                    yield item
                elif item.base:  # a later part of a long file: it goes where its first part went
                    if not rejected:
                        yield item
                elif _CONTROL.search(item.doc_id):
                    # An id must round-trip through a URL path (/documents/<id>) and a log line.
                    rejected = True
                    yield DocumentError(
                        item.source, f"document id {item.doc_id!r} contains a control character (a newline, a tab, ...)"
                    )
                elif item.doc_id in seen:
                    rejected = True
                    yield DocumentError(
                        item.source, f"duplicate document id {item.doc_id!r} (first in {seen[item.doc_id]})"
                    )
                else:
                    rejected = False
                    seen[item.doc_id] = item.source
                    yield item

    def read_file(self, path: Path) -> Iterator[Document | DocumentError]:
        rel = path.name if path == self.root else path.relative_to(self.root).as_posix()
        suffix = path.suffix.lower()
        doc_id = rel[: -len(path.suffix)]
        try:
            if suffix == ".jsonl" and _plain_utf8(path):
                # Read a line at a time: a collection's size bounds no one's memory.
                with open(path, encoding="utf-8", newline=None) as lines:
                    yield from _jsonl_documents(lines, rel, "utf-8")
                return
            if suffix in _PARTED and path.stat().st_size > PART_BYTES:
                encoding = _long_text_encoding(path)
                if encoding is not None:
                    yield from _text_parts(path, rel, doc_id, suffix != ".txt", encoding)
                    return
            data = path.read_bytes()
            if suffix in (".pdf", ".docx"):
                yield self._binary_document(data, suffix, doc_id, rel)
                return
            text, encoding = decode(data, rel)
            del data  # the text is what is kept (a collection's bytes and text at once is twice its size)
        except DocumentError as exc:
            yield exc
            return
        except OSError as exc:
            yield DocumentError(rel, f"cannot read file: {exc.strerror or exc}")
            return
        except UnicodeDecodeError:
            # Read a line at a time after it was checked: the file changed in between.
            yield DocumentError(
                rel,
                "the file changed while it was read (it no longer decodes as it did); the rest of it is not indexed",
            )
            return
        if suffix == ".jsonl":
            yield from _jsonl_documents(_split_lines(text), rel, encoding)
        elif suffix in (".html", ".htm"):
            from search_service.ingest.html import html_document

            title, body = html_document(text)
            title = bounded_title(title) or bounded_title(first_line(body).lstrip("# "))
            if not body.strip():
                yield DocumentError(rel, "no visible text")
            else:
                yield Document(doc_id, title, body, rel, encoding, title_in_text=first_line(body) == title)
        elif suffix in (".md", ".markdown"):
            title = markdown_title(text)
            yield Document(doc_id, title, text, rel, encoding, title_in_text=bool(title))
        else:
            title = bounded_title(first_line(text))
            yield Document(doc_id, title, text, rel, encoding, title_in_text=bool(title))

    @staticmethod
    def _binary_document(data: bytes, suffix: str, doc_id: str, rel: str) -> Document:
        if suffix == ".pdf":
            from search_service.ingest.pdf import pdf_text

            title, text, pages = pdf_text(data, rel)
            title = bounded_title(title) or bounded_title(first_line(text))
            return Document(doc_id, title, text, rel, "pdf", title_in_text=first_line(text) == title, pages=pages)
        from search_service.ingest.word import docx_text

        title, text = docx_text(data, rel)
        if not text.strip():
            raise DocumentError(rel, "a Word file with no text")
        title = bounded_title(title) or bounded_title(first_line(text))
        return Document(doc_id, title, text, rel, "docx", title_in_text=first_line(text) == title)


# A text file bigger than this is read in parts of about PART_CHARS characters, each cut
# at a line's end, so that its size bounds no one's memory.
PART_BYTES = 4 << 20
PART_CHARS = 1 << 20
_PARTED = (".txt", ".md", ".markdown")


def _text_parts(path: Path, rel: str, doc_id: str, markdown: bool, encoding: str) -> Iterator[Document]:
    """A long text file as the parts of one document (:attr:`Document.more`). Unlike reading
    it whole: a line longer than a part is cut where the part ends (its pieces are cut at
    ``passage_max_chars`` anyway), the title is looked for in the first part, and an
    encoding that is not UTF-8 is detected in the first megabyte."""
    title: str | None = None
    base = 0
    with open(path, encoding=encoding, newline=None) as f:  # newlines as decode() makes them
        pending = f.read(PART_CHARS)
        while pending:
            chunk = f.read(PART_CHARS)
            if chunk:
                cut = pending.rfind("\n") + 1 or len(pending)
                text, pending = pending[:cut], pending[cut:] + chunk
            else:
                text, pending = pending, ""
            if title is None:
                title = markdown_title(text) if markdown else bounded_title(first_line(text))
            yield Document(doc_id, title, text, rel, encoding, title_in_text=bool(title), base=base, more=bool(pending))
            base += len(text)


def _raise_corpus_error(exc: OSError) -> None:
    raise CorpusError(f"cannot read corpus folder {exc.filename!r}: {exc.strerror}")


def _plain_utf8(path: Path) -> bool:
    """Whether ``path`` is text in UTF-8 without a BOM, as :func:`decode` would read it
    (anything else, or an empty or binary file, is left to :func:`decode` and its reasons)."""
    with open(path, "rb") as f:
        if f.read(4).startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return False
    return _decodes(path, "utf-8")


def _long_text_encoding(path: Path) -> str | None:
    """The encoding a long text file is read in parts in: from its BOM, UTF-8, or else what
    :func:`decode` detects in its first megabyte, if the whole file decodes in it (None: it
    is read whole, and :func:`decode` says why it cannot be)."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
        whole = not f.read(1)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf_16"
    elif _decodes(path, "utf-8"):
        return "utf-8"
    else:
        import charset_normalizer

        # Cut at a line's end: a newline byte is never part of a GB18030 or Big5 character.
        sample = head if whole else head[: head.rfind(b"\n") + 1] or head
        best = charset_normalizer.from_bytes(sample, cp_isolation=CANDIDATE_ENCODINGS).best()
        if best is None:
            return None
        encoding = best.encoding
    return encoding if _decodes(path, encoding) else None


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole of ``path`` decodes in ``encoding`` into text that is neither
    blank nor binary-looking (checked a megabyte at a time, nothing kept)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    nul_free = not encoding.startswith(("utf_16", "utf-16", "utf_32", "utf-32"))
    blank = True
    with open(path, "rb") as f:
        chunk = first = f.read(1 << 16)
        while chunk:
            if nul_free and b"\x00" in chunk:
                return False
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
            if chunk is first and _looks_binary(text):
                return False
            blank = blank and not text.strip()
            chunk = f.read(1 << 20)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return not blank


def _split_lines(text: str) -> Iterator[str]:
    """``text.split("\\n")`` one line at a time (no list of every line of a collection)."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _jsonl_documents(lines: Iterable[str], rel: str, encoding: str) -> Iterator[Document | DocumentError]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{rel}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield DocumentError(where, f"malformed JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield DocumentError(where, "a line must be a JSON object")
            continue
        doc_id, body = record.get("id"), record.get("text")
        if not isinstance(doc_id, (str, int)) or str(doc_id).strip() == "":
            yield DocumentError(where, "missing 'id'")
            continue
        if not isinstance(body, str) or not body.strip():
            yield DocumentError(where, "missing or empty 'text'")
            continue
        title = record.get("title")
        title = title.strip() if isinstance(title, str) else ""
        metadata = {k: v for k, v in record.items() if k not in ("id", "title", "text")}
        body = body.replace("\r\n", "\n").replace("\r", "\n")
        yield Document(str(doc_id), title, body, rel, encoding, metadata)
