"""Writing a version's segments: within a memory budget (:func:`write_segments`),
and on every core (:func:`write_parallel`), a forked process per contiguous share
of the passages, whose segments are committed together, in order, so document
numbers follow the corpus order."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from search_service.engine.forked import ShareFailed, run_shares
from search_service.engine.whoosh.writer import BulkSegmentWriter
from search_service.errors import BuildError


def write_parallel(
    ix: Any,
    batches: Sequence[Iterable[dict[str, Any]]],
    budget_bytes: int,
    progress: Callable[[int], Any] | None = None,
) -> None:
    """Write each batch of documents as segments (:func:`write_segments`), in a forked
    process per batch; commit all.

    The segments are committed in batch order, so document numbers follow
    the order of ``batches``. Raises :class:`BuildError` if any process fails;
    then nothing is committed.
    """
    try:
        shares = run_shares(functools.partial(_write_batch, ix, budget_bytes), batches, progress)
    except ShareFailed as exc:
        raise BuildError(f"building the index failed ({exc}); the previous version stays current") from None
    commit_segments(ix, [segment for segments in shares for segment in segments])


def commit_segments(ix: Any, segments: list[Any]) -> None:
    """Add written segments to the index, after its existing ones, in order."""
    writer = ix.writer()
    writer.commit(mergetype=lambda w, existing: [*existing, *segments])


def write_segments(
    ix: Any, documents: Iterable[dict[str, Any]], budget_bytes: int, count: Callable[[int], None] | None = None
) -> list[Any]:
    """``documents`` written as segments (not committed), in order: a segment is finished
    whenever the postings its writer holds reach ``budget_bytes``, so a writer's memory
    is bounded by the budget, not by the corpus. ``count(n)``: n more documents written."""
    segments = []
    writer = None
    added = 0
    try:
        for fields in documents:
            if writer is None:
                writer = BulkSegmentWriter(ix, _lk=False)
            writer.add_document(**fields)
            added += 1
            if added % 200 == 0:
                if count is not None:
                    count(200)
                if writer.pool_bytes() >= budget_bytes:
                    segments.append(_finish(writer))
                    writer = None
        if count is not None:
            count(added % 200)
        if writer is not None:
            segments.append(_finish(writer))
    except BaseException:
        if writer is not None:
            writer.cancel()
        raise
    return segments


def _finish(writer: BulkSegmentWriter) -> Any:
    segment = writer._finalize_segment()
    writer._tempstorage.destroy()
    return segment


def _own_temp_storage(storage: Any) -> None:
    """Give this process temporary folders of its own. Whoosh names a writer's
    temporary folder after the index (``MAIN.tmp``), so parallel writers would
    share it, and the first to finish would remove it under the others (their
    compound files are assembled there)."""
    shared = storage.temp_storage
    suffix = f".{os.getpid()}"
    storage.temp_storage = lambda name=None: shared(name + suffix if name else None)


def _write_batch(
    ix: Any, budget_bytes: int, number: int, batch: Iterable[dict[str, Any]], count: Callable[[int], None]
) -> list[Any]:
    """The segments of ``batch``'s documents, written (not committed) in this forked process."""
    _own_temp_storage(ix.storage)  # this process's copy of the storage object
    return write_segments(ix, batch, budget_bytes, count)
