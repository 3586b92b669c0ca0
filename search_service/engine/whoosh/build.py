"""Writing a Whoosh index version: a new folder, written, checked, described."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from whoosh.reading import SegmentReader

from search_service.engine.base import Build, DocumentTable, Record, WriteProgress
from search_service.engine.forked import available
from search_service.engine.whoosh.layout import DOCUMENTS, GROUPS, MANIFEST, ORDER, write_json_atomic, write_json_items
from search_service.engine.whoosh.parallel import commit_segments, write_parallel, write_segments
from search_service.engine.whoosh.postings import corpus_order, document_groups, field_lengths
from search_service.engine.whoosh.schema import build_schema, whoosh_fields
from search_service.engine.whoosh.store import create_index, open_index
from search_service.engine.whoosh.writer import BulkSegmentWriter
from search_service.errors import BuildError
from search_service.fields import FIELDS
from search_service.text.analysis import Analysis


class WhooshBuild(Build):
    """A version folder being written (a copy of ``base`` for an incremental build)."""

    def __init__(
        self, path: Path, analysis: Analysis, base: Path | None, layout: int, budget_bytes: int = 256 << 20
    ) -> None:
        self.path = path
        self.budget_bytes = budget_bytes  # a writer's postings in memory before it starts a new segment
        self.name = path.name
        self.analysis = analysis
        self.schema = build_schema(analysis)
        self.layout = layout
        self.incremental = base is not None
        if base is not None:
            shutil.rmtree(path)
            shutil.copytree(base, path, copy_function=_share_segment)
            (path / MANIFEST).unlink()
            self._ix = open_index(path, self.schema)
        else:
            self._ix = create_index(path, self.schema)

    def write(
        self,
        shares: Sequence[Iterable[Record]],
        *,
        delete_docs: Sequence[str] = (),
        progress: WriteProgress | None = None,
    ) -> None:
        # Load jieba before forking writer processes, so they inherit the dictionary.
        self.analysis.segmenter.initialize()
        if self.incremental:
            self._write_incremental(shares, delete_docs, progress)
        elif available(shares):
            write_parallel(
                self._ix, [map(whoosh_fields, share) for share in shares], self.budget_bytes, progress=progress
            )
        else:
            documents = (whoosh_fields(record) for share in shares for record in share)
            commit_segments(self._ix, write_segments(self._ix, documents, self.budget_bytes, _counter(progress)))

    def _write_incremental(
        self, shares: Sequence[Iterable[Record]], delete_docs: Sequence[str], progress: WriteProgress | None
    ) -> None:
        """The changed and new documents' passages as new segments, the old passages of
        changed and removed documents deleted, and only the merges the policy asks for:
        the work is proportional to the change, not to the corpus."""
        written = write_segments(
            self._ix, (whoosh_fields(r) for share in shares for r in share), self.budget_bytes, _counter(progress)
        )
        writer = BulkSegmentWriter(self._ix)
        try:
            for doc_id in delete_docs:
                writer.delete_by_term("doc_id", doc_id)
        except BaseException:
            writer.cancel()
            raise
        writer.commit(mergetype=lambda w, existing: tiered_merge(w, [*existing, *written]))

    def finish(self, passages: int, manifest: dict[str, Any], documents: DocumentTable) -> None:
        avg_lengths = _check(self.path, self.schema, passages)
        # Each passage's document, for collapse=doc, and its place in the corpus, for
        # ties: computed here once, so that no server builds them in a request.
        with open_index(self.path, self.schema).reader() as reader:
            groups, numbers = document_groups(reader)
        _save(self.path / GROUPS, groups)
        _save(self.path / ORDER, corpus_order(groups, numbers, documents))
        del groups, numbers
        write_json_items(self.path / DOCUMENTS, documents.items())
        # Written last: a version is complete when its manifest exists.
        write_json_atomic(
            self.path / MANIFEST,
            {**manifest, "version": self.name, "schema_version": self.layout, "avg_field_length": avg_lengths},
        )

    def discard(self) -> None:
        self._ix = None
        shutil.rmtree(self.path, ignore_errors=True)


def _counter(progress: WriteProgress | None) -> Callable[[int], None]:
    """``count(n)`` for :func:`write_segments`: ``progress`` with the passages written so far."""
    done = [0]

    def count(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0])

    return count


def _share_segment(source: str, target: str) -> str:
    """Copy a file of the base version; a segment's (compound) file is shared by a hard
    link instead: Whoosh never changes one once written (deletions are in the TOC)."""
    if source.endswith(".seg"):
        try:
            os.link(source, target)
            return target
        except OSError:  # a file system without hard links
            pass
    return shutil.copy2(source, target)


# Lucene's TieredMergePolicy, simplified: segments are grouped in tiers of sizes
# within a factor of SEGMENTS_PER_TIER, and a tier is merged into one segment when
# it holds that many; a segment whose passages are mostly deleted is rewritten.
SEGMENTS_PER_TIER = 10
MAX_DELETED = 1 / 3


def tiered_merge(writer: Any, segments: list[Any]) -> list[Any]:
    """The merge policy of an incremental reindex (Whoosh's ``mergetype``): merges
    the segments it picks into ``writer`` and returns those it keeps."""
    live = [s for s in segments if s.doc_count() > 0]  # a segment all deleted is dropped
    merge = _to_merge(live)
    for s in merge:
        reader = SegmentReader(writer.storage, writer.schema, s)
        writer.add_reader(reader)
        reader.close()
    return [s for s in live if s not in merge]


def _tier(passages: int) -> int:
    return int(math.log(max(passages, 1), SEGMENTS_PER_TIER))


def _to_merge(live: list[Any]) -> list[Any]:
    """The segments to merge into one: those mostly deleted, every full tier, and, as the
    merged segment joins a tier of its own size, that tier too when it becomes full (so
    that no tier is left full after the merge)."""
    merge = [s for s in live if s.deleted_count() > MAX_DELETED * s.doc_count_all()]
    while True:
        tiers: dict[int, list[Any]] = {}
        for s in live:
            if s not in merge:
                tiers.setdefault(_tier(s.doc_count()), []).append(s)
        full = [s for tier in tiers.values() if len(tier) >= SEGMENTS_PER_TIER for s in tier]
        if merge and not full:
            joined = tiers.get(_tier(sum(s.doc_count() for s in merge)), [])
            if len(joined) + 1 >= SEGMENTS_PER_TIER:
                full = joined
        if not full:
            return merge
        merge.extend(full)


def _save(path: Path, array: np.ndarray) -> None:
    """Write an array to a new file (never into one an earlier version shares by a hard link)."""
    path.unlink(missing_ok=True)
    np.save(path, array)


def _check(version_dir: Path, schema: Any, expected_passages: int) -> dict[str, float]:
    """Reopen the committed version and prove it is searchable before serving it.

    Returns the average length of each scored field, computed from the per-passage
    lengths Whoosh stores. Whoosh's own segment totals are exact for passages it
    analyzed but rebuilt from one-byte approximations for passages it merged,
    so an incremental index would score a hair differently from a full rebuild;
    these averages are the same either way (the scorer uses them).
    """
    ix = open_index(version_dir, schema)
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
        return {f.name: (float(field_lengths(reader, f.name)[live].sum()) / count if count else 0.0) for f in FIELDS}
