"""Step 4 of the pipeline: build a Whoosh index version and switch to it.

``build_index`` reads the corpus, splits it into passages, analyzes them into a
*new* version folder, commits, reopens and checks it, and only then switches
the ``CURRENT`` pointer. A run that fails at any point leaves the previous
version current. A lock makes a second concurrent reindex fail at once.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import fields, formats, index as whoosh_index
from whoosh.analysis import Token, Tokenizer

from search_service.analyze import Analysis, AnalysisConfig, GramTokenizer, WordTokenizer, get_analysis
from search_service.corpus import CorpusReader, Document
from search_service.errors import BuildError, DocumentError, SearchError
from search_service.segment import read_word_list
from search_service.passages import Passage, PassageSplitter, line_key, repeated_lines
from search_service.settings import Settings
from search_service.versions import DOCUMENTS, MANIFEST, IndexRoot, write_json_atomic
from search_service.score import field_lengths
from search_service.codec import ArrayCodec
from search_service.writer import BulkSegmentWriter, write_parallel

# The on-disk layout: 3 = compact array posting blocks, 4 = and uncompressed
# stored fields (:mod:`codec`). A version of
# another layout is not opened (reindex rebuilds it; --incremental falls back
# to a full build, as the settings key includes this number).
SCHEMA_VERSION = 4
META_PREFIX = "meta_"
_META_KEY = re.compile(r"^[A-Za-z0-9_]{1,40}$")
# Below this many passages one process is faster than starting writer processes.
PARALLEL_MIN_PASSAGES = 2000



class ValuesTokenizer(Tokenizer):
    """One exact term per value: a string, or each element of a list (metadata filters)."""

    def __call__(self, value: Any, positions: bool = False, chars: bool = False, keeporiginal: bool = False,
                 removestops: bool = True, start_pos: int = 0, start_char: int = 0, tokenize: bool = True,
                 mode: str = "", **kwargs: Any):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        values = value if isinstance(value, (list, tuple)) else [value]
        for i, v in enumerate(values):
            token.text = meta_term(v)
            token.boost = 1.0
            token.stopped = False
            if positions:
                token.pos = start_pos + i
            yield token


def meta_term(value: Any) -> str:
    """The indexed form of a metadata value (what a filter must equal)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def meta_field_name(key: str) -> str | None:
    return META_PREFIX + key if _META_KEY.match(key) else None


def build_schema(config: AnalysisConfig) -> fields.Schema:
    word = WordTokenizer(config)
    gram = GramTokenizer(config)
    schema = fields.Schema(
        passage_id=fields.ID(stored=True, unique=True),
        doc_id=fields.ID(stored=True),
        ordinal=fields.NUMERIC(int, bits=32, stored=True, sortable=True),
        start=fields.STORED,
        end=fields.STORED,
        text=fields.STORED,  # the passage exactly as in the document
        # Its normalized text when that differs character for character; ""
        # when normalization changed its length (then queries normalize it).
        normalized=fields.STORED,
        body=fields.TEXT(analyzer=word, phrase=True),
        grams=fields.TEXT(analyzer=gram, phrase=False),
        title=fields.TEXT(analyzer=word, phrase=False, stored=True),
        title_grams=fields.TEXT(analyzer=gram, phrase=False),
        heading=fields.TEXT(analyzer=word, phrase=False, stored=True),
        heading_grams=fields.TEXT(analyzer=gram, phrase=False),
        source=fields.STORED,
        metadata=fields.STORED,
        content_hash=fields.ID(stored=True),
    )
    schema.add(META_PREFIX + "*", fields.FieldType(formats.Existence(), ValuesTokenizer()), glob=True)
    return schema


def passage_fields(p: Passage, doc: Document, content_hash: str, analysis: Analysis) -> dict[str, Any]:
    """The fields Whoosh stores and indexes for one passage."""
    record: dict[str, Any] = dict(
        passage_id=p.passage_id,
        doc_id=p.doc_id,
        ordinal=p.ordinal,
        start=p.start,
        end=p.end,
        text=p.text,
        body=p.text,
        grams=p.text,
        title=doc.title,
        title_grams=doc.title,
        heading=p.heading,
        heading_grams=p.heading,
        source=doc.source,
        metadata=doc.metadata,
        content_hash=content_hash,
    )
    # Highlighting finds query terms in the normalized passage. Store it, so
    # that queries need not normalize every hit again (the analyzers reuse
    # this normalization: it costs the build nothing).
    norm = analysis.normalize(p.text)
    if norm.text != p.text:
        record["normalized"] = norm.text if norm.one_to_one() else ""
    for key, value in doc.metadata.items():
        name = meta_field_name(key)
        if name and value is not None and not isinstance(value, dict):
            record[name] = [meta_term(v) for v in value] if isinstance(value, list) else meta_term(value)
    return record


@dataclass
class BuildReport:
    """What a reindex did; ``exit_code`` follows the documented CLI contract."""

    version: str | None = None
    documents: int = 0
    passages: int = 0
    reanalyzed: int = 0
    removed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = "full"
    dry_run: bool = False
    switched: bool = False

    @property
    def passages_per_second(self) -> float:
        return self.passages / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return 2 if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passages_per_second"] = round(self.passages_per_second, 1)
        return data


@dataclass
class _Prepared:
    documents: list[Document]
    passages: dict[str, list[Passage]]
    hashes: dict[str, str]
    skipped: list[DocumentError]


def settings_key(config: AnalysisConfig, settings: Settings) -> str:
    """Everything that changes the passages or terms of an unchanged document."""
    payload = json.dumps(
        [SCHEMA_VERSION, asdict(config), settings.passage_min_chars, settings.passage_max_chars],
        ensure_ascii=False, sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def prepare(settings: Settings, exclude: Iterable[str | os.PathLike[str]] = ()) -> _Prepared:
    """Read the corpus and split it into passages (no analysis yet)."""
    corpus = CorpusReader(settings.corpus_dir, exclude=exclude).read()
    boilerplate = repeated_lines(corpus.documents)
    splitter = PassageSplitter(settings.passage_min_chars, settings.passage_max_chars, boilerplate)
    passages: dict[str, list[Passage]] = {}
    hashes: dict[str, str] = {}
    documents = []
    skipped = list(corpus.skipped)
    for doc in corpus.documents:
        split = splitter.split(doc)
        if not split:
            skipped.append(DocumentError(doc.source, f"document {doc.doc_id!r} has no text left after removing boilerplate"))
            continue
        documents.append(doc)
        passages[doc.doc_id] = split
        # A document's passages also depend on which of its lines are corpus-wide
        # boilerplate, so that goes into its hash: --incremental then reanalyzes
        # exactly the documents a full rebuild would split differently.
        dropped = sorted({line_key(l) for l in doc.text.split("\n")} & boilerplate)
        hashes[doc.doc_id] = hashlib.sha256(
            (doc.content_hash + "\n" + "\n".join(dropped)).encode("utf-8")
        ).hexdigest()[:32]
    return _Prepared(documents, passages, hashes, skipped)


def build_index(
    settings: Settings,
    *,
    incremental: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> BuildReport:
    """Reindex ``settings.corpus_dir`` into a new version of ``settings.index_dir``.

    ``progress(done, total)`` is called as passages are added. Raises
    :class:`IndexLocked`, :class:`CorpusError` or :class:`BuildError`; in every
    such case the previous version stays current.
    """
    began = time.perf_counter()
    root = IndexRoot(settings.index_dir)
    config = AnalysisConfig.from_settings(settings)
    exclude = [settings.userdict_path, settings.synonyms_path, settings.stopwords]
    report = BuildReport(dry_run=dry_run)

    if dry_run:
        prepared = prepare(settings, exclude)
        _fill(report, prepared)
        report.mode = "dry-run"
        report.seconds = time.perf_counter() - began
        return report

    lock = root.lock()
    try:
        prepared = prepare(settings, exclude)
        _fill(report, prepared)
        if not prepared.documents:
            raise BuildError("no readable documents in the corpus: nothing indexed, the previous index stays current")
        key = settings_key(config, settings)
        previous = _previous_manifest(root) if incremental else None
        if incremental and (previous is None or previous.get("settings_key") != key):
            report.mode = "full (no compatible previous version for --incremental)"
            previous = None
        version_dir = root.new_version_dir()
        failure: str | None = None
        # A failed Whoosh writer (disk full, ...) leaves temp files open; they are
        # closed once the exception is dropped, here, without a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                _write_version(root, version_dir, previous, prepared, report, settings, config, key, progress)
            except SearchError:
                shutil.rmtree(version_dir, ignore_errors=True)
                raise
            except Exception as exc:  # disk full, a Whoosh error: never switch
                failure = (f"building the index failed ({type(exc).__name__}: {exc}); "
                           "the previous version stays current")
            if failure is not None:
                gc.collect()
        if failure is not None:
            shutil.rmtree(version_dir, ignore_errors=True)
            raise BuildError(failure)
        root.switch(version_dir)
        report.version = version_dir.name
        report.switched = True
        root.clean(settings.keep_versions)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - began
    return report


def _write_version(root: IndexRoot, version_dir: Path, previous: dict[str, Any] | None, prepared: _Prepared,
                   report: BuildReport, settings: Settings, config: AnalysisConfig, key: str,
                   progress: Callable[[int, int], Any] | None) -> None:
    """Write, check and describe (manifest.json) one new version; does not switch to it."""
    if previous is not None:
        report.mode = "incremental"
        _write_incremental(root, version_dir, previous, prepared, config, report, progress)
    else:
        _write_full(version_dir, config, prepared, settings, progress)
        report.reanalyzed = len(prepared.documents)
    avg_lengths = _check(version_dir, report.passages)
    # What --incremental compares, in a file of its own: the manifest is read
    # whenever a server opens a version, and this one grows with the corpus
    # (11 MB, 0.24 s to parse, at 100,000 documents).
    write_json_atomic(version_dir / DOCUMENTS, {
        d.doc_id: {"hash": prepared.hashes[d.doc_id], "source": d.source, "passages": len(prepared.passages[d.doc_id])}
        for d in prepared.documents})
    # Written last: a version is complete when its manifest exists.
    write_json_atomic(version_dir / MANIFEST, {
        "avg_field_length": avg_lengths,
        "version": version_dir.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "schema_version": SCHEMA_VERSION,
        "settings_key": key,
        "analysis": asdict(config),
        "corpus": str(settings.corpus_dir),
        "synonyms": list(read_word_list(settings.synonyms_path)),
        "document_count": report.documents,
        "passage_count": report.passages,
        "skipped": report.skipped,
    })


def _fill(report: BuildReport, prepared: _Prepared) -> None:
    report.documents = len(prepared.documents)
    report.passages = sum(len(v) for v in prepared.passages.values())
    report.skipped = [{"source": e.source, "reason": e.reason} for e in prepared.skipped]


def _previous_manifest(root: IndexRoot) -> dict[str, Any] | None:
    try:
        return root.manifest(root.current_dir())
    except SearchError:
        return None


def _workers(settings: Settings) -> int:
    return settings.workers if settings.workers > 0 else (os.cpu_count() or 1)


def _write_full(version_dir: Path, config: AnalysisConfig, prepared: _Prepared, settings: Settings,
                progress: Callable[[int, int], Any] | None) -> None:
    ix = whoosh_index.create_in(str(version_dir), build_schema(config))
    total = sum(len(v) for v in prepared.passages.values())
    procs = min(_workers(settings), max(1, total // PARALLEL_MIN_PASSAGES))
    # Load jieba before forking writer processes, so they inherit the dictionary.
    get_analysis(config).segmenter.initialize()
    if procs > 1 and "fork" in multiprocessing.get_all_start_methods():
        shares = _shares(prepared, procs)
        write_parallel(ix, [_records(share, prepared, config) for share in shares],
                       progress=(lambda done: progress(done, total)) if progress is not None else None)
        return
    writer = BulkSegmentWriter(ix)
    try:
        _add_documents(writer, prepared.documents, prepared, config, progress, total)
    except BaseException:
        writer.cancel()
        raise
    writer.commit()


def _shares(prepared: _Prepared, count: int) -> list[list[Document]]:
    """The documents cut into ``count`` runs of about as many passages each, in order."""
    total = sum(len(v) for v in prepared.passages.values())
    shares: list[list[Document]] = [[] for _ in range(count)]
    done = 0
    for doc in prepared.documents:
        shares[min(count - 1, done * count // total)].append(doc)
        done += len(prepared.passages[doc.doc_id])
    return [share for share in shares if share]


def _records(documents: list[Document], prepared: _Prepared, config: AnalysisConfig) -> Iterator[dict[str, Any]]:
    analysis = get_analysis(config)
    for doc in documents:
        for p in prepared.passages[doc.doc_id]:
            yield passage_fields(p, doc, prepared.hashes[doc.doc_id], analysis)


def _write_incremental(root: IndexRoot, version_dir: Path, previous: dict[str, Any], prepared: _Prepared,
                       config: AnalysisConfig,
                       report: BuildReport, progress: Callable[[int, int], Any] | None) -> None:
    old_dir = root.versions_dir / previous["version"]
    shutil.rmtree(version_dir)
    shutil.copytree(old_dir, version_dir)
    (version_dir / MANIFEST).unlink()
    old_docs: dict[str, Any] = json.loads((old_dir / DOCUMENTS).read_text("utf-8"))
    changed = [d for d in prepared.documents if old_docs.get(d.doc_id, {}).get("hash") != prepared.hashes[d.doc_id]]
    removed = [doc_id for doc_id in old_docs if doc_id not in prepared.passages]
    ix = whoosh_index.open_dir(str(version_dir))
    writer = ix.writer(limitmb=256, codec=ArrayCodec())
    try:
        for doc_id in removed + [d.doc_id for d in changed if d.doc_id in old_docs]:
            writer.delete_by_term("doc_id", doc_id)
        total = sum(len(prepared.passages[d.doc_id]) for d in changed)
        _add_documents(writer, changed, prepared, config, progress, total)
    except BaseException:
        writer.cancel()
        raise
    # Merge into one segment: Whoosh keeps deleted passages in its term
    # statistics until a merge, and incremental must rank exactly like a full
    # rebuild. Merging copies postings; it does not re-run jieba.
    writer.commit(optimize=True)
    report.reanalyzed = len(changed)
    report.removed = len(removed)


def _add_documents(writer: Any, documents: list[Document], prepared: _Prepared, config: AnalysisConfig,
                   progress: Callable[[int, int], Any] | None, total: int) -> None:
    analysis = get_analysis(config)
    done = 0
    for doc in documents:
        for p in prepared.passages[doc.doc_id]:
            writer.add_document(**passage_fields(p, doc, prepared.hashes[doc.doc_id], analysis))
            done += 1
        if progress is not None:
            progress(done, total)


SCORED_FIELDS = ("body", "grams", "title", "title_grams", "heading", "heading_grams")


def _check(version_dir: Path, expected_passages: int) -> dict[str, float]:
    """Reopen the committed version and prove it is searchable before serving it.

    Returns the average length of each scored field, computed from the per-passage
    lengths Whoosh stores. Whoosh's own segment totals are exact for passages it
    analyzed but rebuilt from one-byte approximations for passages it merged,
    so an incremental index would score a hair differently from a full rebuild;
    these averages are the same either way (the scorer, ``score.TermScorer``, uses them).
    """
    ix = whoosh_index.open_dir(str(version_dir))
    with ix.searcher() as searcher:
        count = searcher.doc_count()
        if count != expected_passages:
            raise BuildError(f"the new index holds {count} passages, expected {expected_passages}; not switched")
        if count:
            stored = next(searcher.all_stored_fields())
            if "passage_id" not in stored:
                raise BuildError("the new index cannot be read back; not switched")
        reader = searcher.reader()
        live = np.fromiter(reader.all_doc_ids(), dtype=np.int64) if reader.has_deletions() else slice(None)
        return {name: (float(field_lengths(reader, name)[live].sum()) / count if count else 0.0)
                for name in SCORED_FIELDS}
