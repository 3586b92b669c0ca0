"""Preparing a reindex: the corpus read into the spool and split into passages, one
document at a time, and the lines documents share counted (page chrome); what a build
keeps of each document until its passages are written (:class:`Entry`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from search_service.errors import DocumentError
from search_service.fields import filterable
from search_service.ingest.corpus import CorpusReader, Document
from search_service.ingest.passages import Passage, PassageSplitter, RepeatedLines, line_key
from search_service.ingest.spool import Spool
from search_service.settings import Settings

# progress(phase, done, total): phases "reading" (files), "analyzing" (passages),
# "writing" (the engine commits) and "checking" (the new version, then the switch).
ReindexProgress = Callable[[str, int, int], Any]


@dataclass(slots=True)
class Entry:
    """What a build keeps of a document between reading it and writing its passages."""

    doc_id: str
    source: str
    offset: int  # in the spool
    size: int
    chars: int
    passages: int
    hash: str
    whole: bool  # page chrome only: indexed as it is
    parts: int = 1  # a long file's parts, one after the other in the spool


@dataclass
class Prepared:
    entries: list[Entry]
    skipped: list[DocumentError]
    warnings: list[dict[str, str]]
    splitter: PassageSplitter
    spool: Spool
    filter_keys: set[str]

    def passages(self, entry: Entry) -> tuple[Document, Iterator[Passage]]:
        """A document (its first part) read back from the spool and split again where it is
        written: a build holds an entry per document, not the corpus's text nor its passages."""
        parts = _spooled_parts(self.spool, entry)
        first = next(parts)
        return first, self.splitter.passages(itertools.chain((first,), parts), keep_chrome=entry.whole)


def _spooled_parts(spool: Spool, entry: Entry) -> Iterator[Document]:
    if entry.parts == 1:
        return iter((spool.get(entry.offset, entry.size),))
    return spool.parts(entry.offset, entry.size)


def prepare(
    settings: Settings,
    spool: Spool,
    exclude: Iterable[str | os.PathLike[str]] = (),
    progress: ReindexProgress | None = None,
) -> Prepared:
    """Read the corpus into ``spool`` and split it into passages (no analysis yet).

    One document in memory at a time: each is read, split as if no line were page
    chrome, and spooled, while the lines documents share are counted. Once every
    document is read, that count says which lines are chrome; only the documents
    holding such a line are read back and split again.
    """
    reading = (lambda done, total: progress("reading", done, total)) if progress is not None else None
    chrome = RepeatedLines(settings.boilerplate_min_documents)
    splitter = PassageSplitter(settings.passage_min_chars, settings.passage_max_chars)
    entries: list[Entry] = []
    skipped: list[DocumentError] = []
    filter_keys: set[str] = set()
    items = CorpusReader(settings.corpus_dir, exclude=exclude).items(reading)
    for item in items:
        if isinstance(item, DocumentError):
            skipped.append(item)
            continue
        try:
            entry = _entry(_spooling(item, items, spool, chrome), splitter, spool, spool.size)
        except _Unfinished as exc:  # a long file failed part way: none of it is indexed
            chrome.discard()
            skipped.append(exc.error)
            continue
        if entry is None:
            chrome.discard()
            skipped.append(DocumentError(item.source, f"document {item.doc_id!r} has no text"))
            continue
        entries.append(entry)
        filter_keys.update(filterable(item.metadata))
    spool.flush()  # complete on disk before any writer is forked
    lines = chrome.lines()
    splitter = PassageSplitter(settings.passage_min_chars, settings.passage_max_chars, lines)
    for number in chrome.holders(lines):
        entry = entries[number]
        again = _entry(_spooled_parts(spool, entry), splitter, spool, entry.offset, entry.size)
        assert again is not None, "kept whole, a document has the text it had"
        entries[number] = again
    # A document never loses all its text to the chrome filter: it is kept whole, and that is said.
    warnings = [
        {
            "source": e.source,
            "warning": f"document {e.doc_id!r} looks like page chrome only (every line "
            "repeated across documents or a UI word); indexed as it is",
        }
        for e in entries
        if e.whole
    ]
    return Prepared(entries, skipped, warnings, splitter, spool, filter_keys)


class _Unfinished(Exception):
    def __init__(self, error: DocumentError) -> None:
        self.error = error


def _spooling(
    first: Document, items: Iterator[Document | DocumentError], spool: Spool, chrome: RepeatedLines
) -> Iterator[Document]:
    """``first`` and, for a long file, the parts that follow it in ``items``, each put in the
    spool and its lines counted as it goes by. Raises _Unfinished when a part is missing."""
    part = first
    while True:
        spool.put(part)
        chrome.add(part.text if part.page_like else "", more=part.more)  # only pages share chrome
        yield part
        if not part.more:
            return
        after = next(items, None)
        if not isinstance(after, Document):
            raise _Unfinished(after or DocumentError(first.source, "the file ended before its last part was read"))
        assert after.base and after.doc_id == first.doc_id, "a long file's parts come one after the other"
        part = after


class _Seen:
    """What a build learns of a document as its parts go by: its first part, its length,
    its hash and which of its lines are page chrome (``chrome``)."""

    def __init__(self, chrome: Container[str]) -> None:
        self.chrome = chrome
        self.first: Document | None = None
        self.parts = 0
        self.chars = 0
        self.dropped: set[str] = set()
        self._sha: Any = None  # a long file's parts hashed as they go by

    def tap(self, parts: Iterable[Document]) -> Iterator[Document]:
        for part in parts:
            self.parts += 1
            self.chars += len(part.text)
            if self.first is None:
                self.first = part
            else:
                if self._sha is None:
                    first = self.first
                    self._sha = hashlib.sha256(
                        json.dumps(
                            [first.title, first.source, first.metadata], ensure_ascii=False, sort_keys=True
                        ).encode("utf-8")
                    )
                    self._sha.update(first.text.encode("utf-8"))
                self._sha.update(part.text.encode("utf-8"))
            if self.chrome:
                self.dropped.update(k for k in {line_key(line) for line in part.text.split("\n")} if k in self.chrome)
            yield part

    def hash(self) -> str:
        # A document's passages also depend on which of its lines are corpus-wide
        # boilerplate, so that goes into its hash: --incremental then reanalyzes
        # exactly the documents a full rebuild would split differently.
        assert self.first is not None
        content = self._sha.hexdigest()[:32] if self._sha is not None else self.first.content_hash
        return hashlib.sha256((content + "\n" + "\n".join(sorted(self.dropped))).encode("utf-8")).hexdigest()[:32]


def _entry(
    parts: Iterable[Document], splitter: PassageSplitter, spool: Spool, offset: int, size: int | None = None
) -> Entry | None:
    """The entry of the document whose parts (one, unless it is a long file) are ``parts``, as
    ``splitter`` splits it; None when it has no text at all. The parts are at ``offset`` in
    the spool, ``size`` bytes (None: they are being put there as they go by)."""
    seen = _Seen(splitter.boilerplate)
    count = splitter.count(seen.tap(parts))
    if size is None:
        size = spool.size - offset
    doc = seen.first
    assert doc is not None, "a document has a part"
    whole = False
    if not count:
        count = splitter.count(doc if seen.parts == 1 else spool.parts(offset, size), keep_chrome=True)
        whole = True
    if not count:
        return None
    return Entry(doc.doc_id, doc.source, offset, size, seen.chars, count, seen.hash(), whole, seen.parts)
