"""Writing a Whoosh index version: a new folder, written, checked, described."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import index as whoosh_index

from search_service.engine import forked
from search_service.engine.base import Build, Progress, Record
from search_service.engine.whoosh.codec import ArrayCodec
from search_service.engine.whoosh.layout import DOCUMENTS, GROUPS, MANIFEST, write_json_atomic
from search_service.engine.whoosh.postings import document_groups, field_lengths
from search_service.engine.whoosh.schema import build_schema, whoosh_fields
from search_service.engine.whoosh.writer import commit_segments, write_parallel, write_segments
from search_service.errors import BuildError
from search_service.fields import FIELDS
from search_service.text.analysis import AnalysisConfig, get_analysis


class WhooshBuild(Build):
    """A version folder being written (a copy of ``base`` for an incremental build)."""

    def __init__(self, path: Path, config: AnalysisConfig, base: Path | None, layout: int,
                 budget_bytes: int = 256 << 20) -> None:
        self.path = path
        self.budget_bytes = budget_bytes  # a writer's postings in memory before it starts a new segment
        self.name = path.name
        self.config = config
        self.layout = layout
        self.incremental = base is not None
        if base is not None:
            shutil.rmtree(path)
            shutil.copytree(base, path)
            (path / MANIFEST).unlink()
            self._ix = whoosh_index.open_dir(str(path))
        else:
            self._ix = whoosh_index.create_in(str(path), build_schema(config))

    def write(self, shares: Sequence[Iterable[Record]], *, delete_docs: Sequence[str] = (),
              progress: Progress | None = None) -> None:
        # Load jieba before forking writer processes, so they inherit the dictionary.
        get_analysis(self.config).segmenter.initialize()
        if self.incremental:
            self._write_incremental(shares, delete_docs, progress)
        elif forked.available(shares):
            write_parallel(self._ix, [map(whoosh_fields, share) for share in shares], self.budget_bytes,
                           progress=progress)
        else:
            done = [0]

            def count(n: int) -> None:
                done[0] += n
                if progress is not None:
                    progress(done[0])

            documents = (whoosh_fields(record) for share in shares for record in share)
            commit_segments(self._ix, write_segments(self._ix, documents, self.budget_bytes, count))

    def _write_incremental(self, shares: Sequence[Iterable[Record]], delete_docs: Sequence[str],
                           progress: Progress | None) -> None:
        writer = self._ix.writer(limitmb=256, codec=ArrayCodec())
        try:
            for doc_id in delete_docs:
                writer.delete_by_term("doc_id", doc_id)
            _add(writer, shares, progress)
        except BaseException:
            writer.cancel()
            raise
        # Merge into one segment: Whoosh keeps deleted passages in its term
        # statistics until a merge, and incremental must rank exactly like a full
        # rebuild. Merging copies postings; it does not re-run jieba.
        writer.commit(optimize=True)

    def finish(self, passages: int, manifest: dict[str, Any], documents: dict[str, Any]) -> None:
        avg_lengths = _check(self.path, passages)
        # Each passage's document, for collapse=doc: computed here once, so that
        # no server builds it in a request (it grows with the corpus).
        with whoosh_index.open_dir(str(self.path)).reader() as reader:
            np.save(self.path / GROUPS, document_groups(reader))
        write_json_atomic(self.path / DOCUMENTS, documents)
        # Written last: a version is complete when its manifest exists.
        write_json_atomic(self.path / MANIFEST, {**manifest, "version": self.name, "schema_version": self.layout,
                                                 "avg_field_length": avg_lengths})

    def discard(self) -> None:
        self._ix = None
        shutil.rmtree(self.path, ignore_errors=True)


def _add(writer: Any, shares: Sequence[Iterable[Record]], progress: Progress | None) -> None:
    done = 0
    for share in shares:
        for record in share:
            writer.add_document(**whoosh_fields(record))
            done += 1
            if progress is not None and done % 100 == 0:
                progress(done)
    if progress is not None:
        progress(done)


def _check(version_dir: Path, expected_passages: int) -> dict[str, float]:
    """Reopen the committed version and prove it is searchable before serving it.

    Returns the average length of each scored field, computed from the per-passage
    lengths Whoosh stores. Whoosh's own segment totals are exact for passages it
    analyzed but rebuilt from one-byte approximations for passages it merged,
    so an incremental index would score a hair differently from a full rebuild;
    these averages are the same either way (the scorer uses them).
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
        return {f.name: (float(field_lengths(reader, f.name)[live].sum()) / count if count else 0.0)
                for f in FIELDS}
