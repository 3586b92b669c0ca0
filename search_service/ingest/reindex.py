"""Reindex: read the corpus, split it into passages and write them, analyzed,
into a new version of the engine's index, then switch to it.

``build_index`` reads and splits the corpus, has the engine write a *new*
version (in parallel shares of the corpus, or only the changed documents with
``--incremental``), check and describe it, and only then switches to it. A
run that fails at any point leaves the previous version current; the engine's
lock makes a second concurrent reindex fail at once.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import os
import time
import warnings
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search_service.engine import open_engine
from search_service.engine.base import Build, CurrentVersion, Engine, Record
from search_service.errors import BuildError, DocumentError, IndexLocked, SearchError
from search_service.fields import filterable
from search_service.ingest.corpus import CorpusReader, Document
from search_service.ingest.passages import Passage, PassageSplitter, RepeatedLines, line_key
from search_service.ingest.records import passage_record
from search_service.ingest.spool import Spool
from search_service.settings import Settings
from search_service.text.analysis import Analysis, AnalysisConfig, get_analysis
from search_service.text.segment import read_word_list

# progress(phase, done, total): phases "reading" (files), "analyzing" (passages),
# "writing" (the engine commits) and "checking" (the new version, then the switch).
ReindexProgress = Callable[[str, int, int], Any]

# Below this many passages a share, one process is faster than starting writer processes.
PARALLEL_MIN_PASSAGES = 2000
# What a passage costs a writer besides its text, in characters' worth of work.
PASSAGE_CHARACTERS = 100


@dataclass
class BuildReport:
    """What a reindex did."""

    version: str | None = None
    documents: int = 0
    passages: int = 0
    reanalyzed: int = 0
    removed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    added: int = 0
    changed: int = 0
    seconds: float = 0.0
    mode: str = "full"
    dry_run: bool = False
    switched: bool = False

    @property
    def passages_per_second(self) -> float:
        return self.passages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passages_per_second"] = round(self.passages_per_second, 1)
        return data


@dataclass(slots=True)
class _Entry:
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
class _Prepared:
    entries: list[_Entry]
    skipped: list[DocumentError]
    warnings: list[dict[str, str]]
    splitter: PassageSplitter
    spool: Spool
    filter_keys: set[str]

    def passages(self, entry: _Entry) -> tuple[Document, Iterator[Passage]]:
        """A document (its first part) read back from the spool and split again where it is
        written: a build holds an entry per document, not the corpus's text nor its passages."""
        parts = _spooled_parts(self.spool, entry)
        first = next(parts)
        return first, self.splitter.passages(itertools.chain((first,), parts), keep_chrome=entry.whole)


def _spooled_parts(spool: Spool, entry: _Entry) -> Iterator[Document]:
    if entry.parts == 1:
        return iter((spool.get(entry.offset, entry.size),))
    return spool.parts(entry.offset, entry.size)


def settings_key(config: AnalysisConfig, settings: Settings, layout: int) -> str:
    """Everything that changes the passages or terms of an unchanged document."""
    payload = json.dumps(
        [layout, asdict(config), settings.passage_min_chars, settings.passage_max_chars],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def prepare(
    settings: Settings,
    spool: Spool,
    exclude: Iterable[str | os.PathLike[str]] = (),
    progress: ReindexProgress | None = None,
) -> _Prepared:
    """Read the corpus into ``spool`` and split it into passages (no analysis yet).

    One document in memory at a time: each is read, split as if no line were page
    chrome, and spooled, while the lines documents share are counted. Once every
    document is read, that count says which lines are chrome; only the documents
    holding such a line are read back and split again.
    """
    reading = (lambda done, total: progress("reading", done, total)) if progress is not None else None
    chrome = RepeatedLines(settings.boilerplate_min_documents)
    splitter = PassageSplitter(settings.passage_min_chars, settings.passage_max_chars)
    entries: list[_Entry] = []
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
    return _Prepared(entries, skipped, warnings, splitter, spool, filter_keys)


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
) -> _Entry | None:
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
    return _Entry(doc.doc_id, doc.source, offset, size, seen.chars, count, seen.hash(), whole, seen.parts)


def analysis_config(settings: Settings) -> AnalysisConfig:
    """The analysis the settings ask for: their OpenCC config and segmenter, the corpus's
    user dictionary, and the stopword file (or the bundled list)."""
    return AnalysisConfig.create(
        settings.opencc_config,
        settings.segmenter,
        read_word_list(settings.userdict_path),
        read_word_list(settings.stopwords) if settings.stopwords else None,
    )


def build_index(
    settings: Settings,
    *,
    incremental: bool = False,
    dry_run: bool = False,
    progress: ReindexProgress | None = None,
    engine: Engine | None = None,
) -> BuildReport:
    """Reindex ``settings.corpus_dir`` into a new version of the engine's index.

    ``progress(phase, done, total)`` is called as it goes (see :data:`ReindexProgress`). Raises
    :class:`IndexLocked`, :class:`CorpusError` or :class:`BuildError`; in every
    such case the previous version stays current.
    """
    began = time.perf_counter()
    analysis = get_analysis(analysis_config(settings), str(settings.jieba_cache_dir))
    exclude: list[str | os.PathLike[str]] = [settings.userdict_path, settings.synonyms_path, settings.stopwords]
    report = BuildReport(dry_run=dry_run)

    if dry_run:
        with Spool(settings.index_dir if Path(settings.index_dir).is_dir() else None) as spool:
            _fill(report, prepare(settings, spool, exclude, progress))
        report.mode = "dry-run"
        report.seconds = time.perf_counter() - began
        return report

    engine = engine or open_engine(settings)
    try:
        _reindex(settings, report, analysis, exclude, incremental, progress, engine, began)
    except IndexLocked:
        raise  # another reindex is running: its outcome is the one to keep
    except SearchError as exc:
        _record(engine, report, began, exc.message)
        raise
    _record(engine, report, began, None)
    return report


def _reindex(
    settings: Settings,
    report: BuildReport,
    analysis: Analysis,
    exclude: list[Any],
    incremental: bool,
    progress: ReindexProgress | None,
    engine: Engine,
    began: float,
) -> None:
    with engine.lock(), Spool(settings.index_dir) as spool:
        prepared = prepare(settings, spool, exclude, progress)
        _fill(report, prepared)
        if not prepared.entries:
            raise BuildError("no readable documents in the corpus: nothing indexed, the previous index stays current")
        key = settings_key(analysis.config, settings, engine.layout)
        previous = engine.previous() if incremental else None
        if incremental and (previous is None or previous.manifest.get("settings_key") != key):
            report.mode = "full (no compatible previous version for --incremental)"
            previous = None
        if previous is not None and _unchanged(previous, prepared, settings):
            # Nothing to write: the current version stays, and no new one is made.
            report.mode = "incremental (nothing changed)"
            report.version = previous.name
            return
        build = _build(engine, analysis, previous, prepared, report, settings, key, progress)
        if build is None:  # the current version could not be read back: build it all anew
            report.mode = "full (the current version cannot be read, so --incremental rebuilt it all)"
            build = _build(engine, analysis, None, prepared, report, settings, key, progress)
            assert build is not None  # a full build raises BuildError, never returns None
        engine.switch(build)
        if progress is not None:
            progress("checking", 1, 1)
        report.version = build.name
        report.switched = True
        engine.clean(settings.keep_versions)


def _record(engine: Engine, report: BuildReport, began: float, error: str | None) -> None:
    """Keep this reindex's report, and how it ended, as the engine's last (/metrics reads it)."""
    report.seconds = time.perf_counter() - began
    engine.keep_report({**report.as_dict(), "ok": error is None, "error": error, "finished": time.time()})


def _build(
    engine: Engine,
    analysis: Analysis,
    previous: CurrentVersion | None,
    prepared: _Prepared,
    report: BuildReport,
    settings: Settings,
    key: str,
    progress: ReindexProgress | None,
) -> Build | None:
    """A new version written, checked and described (not switched to); None when an
    incremental build failed on reading the current version. Raises BuildError."""
    build = engine.new_build(analysis, base=previous.name if previous else None)
    failure: str | None = None
    # A failed writer (disk full, ...) leaves temp files open; they are
    # closed once the exception is dropped, here, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            _write_version(build, previous, prepared, report, settings, analysis, key, progress)
        except SearchError:
            build.discard()
            raise
        except Exception as exc:  # noqa: BLE001  (disk full, an engine error: never switch)
            failure = f"building the index failed ({type(exc).__name__}: {exc}); the previous version stays current"
        if failure is not None:
            gc.collect()
    if failure is None:
        return build
    build.discard()
    if previous is not None:
        return None
    raise BuildError(failure)


def _write_version(
    build: Build,
    previous: CurrentVersion | None,
    prepared: _Prepared,
    report: BuildReport,
    settings: Settings,
    analysis: Analysis,
    key: str,
    progress: ReindexProgress | None,
) -> None:
    """Write, check and describe one new version; does not switch to it."""
    if previous is not None:
        report.mode = "incremental"
        old_docs = previous.documents
        changed, removed = _changes(previous, prepared)
        total = sum(e.passages for e in changed)
        build.write(
            [_records(changed, prepared, analysis)],
            delete_docs=removed + [e.doc_id for e in changed if e.doc_id in old_docs],
            progress=_analyzing(progress, total),
        )
        report.reanalyzed = len(changed)
        report.added = sum(1 for e in changed if e.doc_id not in old_docs)
        report.changed = report.reanalyzed - report.added
        report.removed = len(removed)
    else:
        workers = settings.workers if settings.workers > 0 else (os.cpu_count() or 1)
        shares = _shares(prepared.entries, min(workers, max(1, report.passages // PARALLEL_MIN_PASSAGES)))
        build.write(
            [_records(share, prepared, analysis) for share in shares], progress=_analyzing(progress, report.passages)
        )
        report.reanalyzed = len(prepared.entries)
    if progress is not None:
        progress("writing", 1, 1)
        progress("checking", 0, 1)
    # What --incremental compares, kept apart from the manifest: the manifest is
    # read whenever a server opens a version, and this grows with the corpus.
    build.finish(
        report.passages,
        {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings_key": key,
            "analysis": asdict(analysis.config),
            "corpus": str(settings.corpus_dir),
            "synonyms": list(read_word_list(settings.synonyms_path)),
            "document_count": report.documents,
            "passage_count": report.passages,
            "skipped": report.skipped,
            "filter_keys": sorted(prepared.filter_keys),
        },
        _DocumentTable(prepared.entries),
    )


class _DocumentTable:
    """The new version's per-document records (:class:`DocumentTable`), made from the entries
    as they are read: not a dict of a million records beside the entries."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = entries

    def __iter__(self) -> Iterator[str]:
        return (e.doc_id for e in self._entries)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return ((e.doc_id, {"hash": e.hash, "source": e.source, "passages": e.passages}) for e in self._entries)


def _changes(previous: CurrentVersion, prepared: _Prepared) -> tuple[list[_Entry], list[str]]:
    """The documents new or changed since the ``previous`` version, and the ids of those removed."""
    old_docs = previous.documents
    changed = [e for e in prepared.entries if old_docs.get(e.doc_id, {}).get("hash") != e.hash]
    current = {e.doc_id for e in prepared.entries}
    removed = [doc_id for doc_id in old_docs if doc_id not in current]
    return changed, removed


def _unchanged(previous: CurrentVersion, prepared: _Prepared, settings: Settings) -> bool:
    """Whether a new version would be the ``previous`` one again: no document and no synonym changed."""
    changed, removed = _changes(previous, prepared)
    return (
        not changed
        and not removed
        and previous.manifest.get("synonyms") == list(read_word_list(settings.synonyms_path))
    )


def _analyzing(progress: ReindexProgress | None, total: int) -> Callable[[int], Any] | None:
    """The engine's progress (passages written so far) as phases: analyzing, then, once
    every passage is in, writing (the engine's commit) until the write returns."""
    if progress is None:
        return None

    def report(done: int) -> None:
        progress("analyzing", done, total)
        if done >= total:
            progress("writing", 0, 1)

    return report


def _fill(report: BuildReport, prepared: _Prepared) -> None:
    report.documents = len(prepared.entries)
    report.passages = sum(e.passages for e in prepared.entries)
    report.skipped = [{"source": e.source, "reason": e.reason} for e in prepared.skipped]
    report.warnings = prepared.warnings


def _shares(entries: list[_Entry], count: int) -> list[list[_Entry]]:
    """The documents cut into ``count`` runs of about as much work each, in order.

    A writer's time goes with the text it segments and the passages it writes, so
    shares are balanced on characters plus a fixed cost per passage, not on passages
    alone (a share of long passages would finish last while the other core waits).
    """

    def work(entry: _Entry) -> int:
        return entry.chars + PASSAGE_CHARACTERS * entry.passages

    total = sum(map(work, entries)) or 1
    shares: list[list[_Entry]] = [[] for _ in range(count)]
    done = 0
    for entry in entries:
        cost = work(entry)
        # A document goes to the share its middle falls in.
        shares[min(count - 1, (2 * done + cost) * count // (2 * total))].append(entry)
        done += cost
    return [share for share in shares if share]


def _records(entries: list[_Entry], prepared: _Prepared, analysis: Analysis) -> Iterator[Record]:
    """The passage records of the ``entries``' documents, made lazily (in the process that writes them)."""
    for entry in entries:
        doc, passages = prepared.passages(entry)
        for p in passages:
            yield passage_record(p, doc, entry.hash, analysis)
