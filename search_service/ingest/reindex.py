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
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search_service.engine import open_engine
from search_service.engine.base import Build, CurrentVersion, Engine, Record
from search_service.errors import BuildError, IndexLocked, SearchError
from search_service.ingest.prepare import Entry, Prepared, ReindexProgress, prepare
from search_service.ingest.records import passage_record
from search_service.ingest.spool import Spool
from search_service.settings import Settings
from search_service.text.analysis import Analysis, AnalysisConfig, get_analysis
from search_service.text.segment import read_word_list

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


def settings_key(config: AnalysisConfig, settings: Settings, layout: int) -> str:
    """Everything that changes the passages or terms of an unchanged document."""
    payload = json.dumps(
        [layout, asdict(config), settings.passage_min_chars, settings.passage_max_chars],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


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
        engine.discard_unfinished()  # a killed run's half-written version must not crowd this one out
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
    prepared: Prepared,
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
    prepared: Prepared,
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

    def __init__(self, entries: list[Entry]) -> None:
        self._entries = entries

    def __iter__(self) -> Iterator[str]:
        return (e.doc_id for e in self._entries)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return ((e.doc_id, {"hash": e.hash, "source": e.source, "passages": e.passages}) for e in self._entries)


def _changes(previous: CurrentVersion, prepared: Prepared) -> tuple[list[Entry], list[str]]:
    """The documents new or changed since the ``previous`` version, and the ids of those removed."""
    old_docs = previous.documents
    changed = [e for e in prepared.entries if old_docs.get(e.doc_id, {}).get("hash") != e.hash]
    current = {e.doc_id for e in prepared.entries}
    removed = [doc_id for doc_id in old_docs if doc_id not in current]
    return changed, removed


def _unchanged(previous: CurrentVersion, prepared: Prepared, settings: Settings) -> bool:
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


def _fill(report: BuildReport, prepared: Prepared) -> None:
    report.documents = len(prepared.entries)
    report.passages = sum(e.passages for e in prepared.entries)
    report.skipped = [{"source": e.source, "reason": e.reason} for e in prepared.skipped]
    report.warnings = prepared.warnings


def _shares(entries: list[Entry], count: int) -> list[list[Entry]]:
    """The documents cut into ``count`` runs of about as much work each, in order.

    A writer's time goes with the text it segments and the passages it writes, so
    shares are balanced on characters plus a fixed cost per passage, not on passages
    alone (a share of long passages would finish last while the other core waits).
    """

    def work(entry: Entry) -> int:
        return entry.chars + PASSAGE_CHARACTERS * entry.passages

    total = sum(map(work, entries)) or 1
    shares: list[list[Entry]] = [[] for _ in range(count)]
    done = 0
    for entry in entries:
        cost = work(entry)
        # A document goes to the share its middle falls in.
        shares[min(count - 1, (2 * done + cost) * count // (2 * total))].append(entry)
        done += cost
    return [share for share in shares if share]


def _records(entries: list[Entry], prepared: Prepared, analysis: Analysis) -> Iterator[Record]:
    """The passage records of the ``entries``' documents, made lazily (in the process that writes them)."""
    for entry in entries:
        doc, passages = prepared.passages(entry)
        for p in passages:
            yield passage_record(p, doc, entry.hash, analysis)
