"""The engine seam: what the search and build layers ask of an index engine.

An :class:`Engine` keeps versions of an index (one is current), opens them
for searching and writes new ones. The search layer hands an opened
:class:`IndexVersion` a whole :class:`~.plan.QueryPlan` and gets ranked
passage references back, so an engine can rank on its own side (a cluster) or
over posting arrays in process (:mod:`.bm25`, as the Whoosh engine does).
Passages go in and come out as plain records: the attributes of
:data:`search_service.fields.STORED` plus, going in, ``filters`` (metadata key
→ indexed values).

Engines raise only :mod:`search_service.errors` exceptions across this seam:
:class:`IndexUnavailable` when a version cannot be read, :class:`IndexLocked`
when another build holds the lock, :class:`BuildError` when a build fails.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from search_service.engine.plan import QueryPlan
from search_service.text.analysis import Analysis

Record = dict[str, Any]
WriteProgress = Callable[[int], Any]  # passages written so far


@dataclass(frozen=True)
class Ranked:
    """The best passages of a plan (engine references, best first), their scores, and how many matched."""

    refs: Sequence[Any] | np.ndarray  # an array of passage numbers, or the engine's records
    scores: Sequence[float] | np.ndarray
    total: int


class IndexVersion(ABC):
    """One complete, immutable index version, opened for searching."""

    name: str
    manifest: dict[str, Any]
    # How the version was analyzed (its manifest's config): queries are analyzed alike.
    analysis: Analysis
    doc_count: int
    # Searched fields no passage has (a corpus without titles): the planner leaves them out.
    empty_fields: frozenset[str] = frozenset()

    @abstractmethod
    def rank(self, plan: QueryPlan, limit: int, collapse: bool) -> Ranked:
        """The best ``limit`` passages of ``plan`` (with ``collapse``, each document's best only)."""

    @abstractmethod
    def stored(self, ref: Any) -> Record:
        """The stored record of a passage that :meth:`rank` returned."""

    @abstractmethod
    def passage(self, passage_id: str) -> Record | None:
        """A passage's record by id."""

    @abstractmethod
    def document(self, doc_id: str, start: int = 0, size: int = 100) -> tuple[list[Record], int]:
        """Passages ``start`` to ``start + size`` of a document, in order, and how many it has
        (0 when there is no such document). Only those passages are read."""

    @abstractmethod
    def doc_frequency(self, field: str, term: str) -> int:
        """How many passages hold ``term`` in ``field``."""

    @abstractmethod
    def size_bytes(self) -> int:
        """The version's size on disk."""

    def size_by_part(self) -> dict[str, int]:
        """:meth:`size_bytes` split by what the bytes hold (an engine that cannot tell: one part)."""
        return {"index": self.size_bytes()}

    def cache_info(self) -> dict[str, int]:
        """What the version keeps in memory for queries (empty when nothing)."""
        return {}

    def check(self) -> None:  # noqa: B027  (a version with nothing to check checks nothing)
        """Raise VersionDamaged when the version can no longer be read (cheap: /health calls it)."""


@dataclass(frozen=True)
class CurrentVersion:
    """The current version as ``--incremental`` builds on it: its manifest and its
    documents record (per document id: hash, source, passage count)."""

    manifest: dict[str, Any]
    documents: dict[str, Any]

    @property
    def name(self) -> str:
        name: str = self.manifest["version"]
        return name


class DocumentTable(Protocol):
    """Per document, in corpus order, what ``--incremental`` compares (hash, source, passage
    count): a dict, or a view a build makes from its entries as it is read (a million
    documents' records need not be held at once)."""

    def __iter__(self) -> Iterator[str]: ...

    def items(self) -> Iterable[tuple[str, dict[str, Any]]]: ...


class Build(ABC):
    """One new version being written; served only after :meth:`finish` and the engine's switch."""

    name: str

    @abstractmethod
    def write(
        self,
        shares: Sequence[Iterable[Record]],
        *,
        delete_docs: Sequence[str] = (),
        progress: WriteProgress | None = None,
    ) -> None:
        """Add the passages of ``shares`` (each may be written in parallel, in order) after
        removing the passages of ``delete_docs`` (an incremental build's changed and removed documents)."""

    @abstractmethod
    def finish(self, passages: int, manifest: dict[str, Any], documents: DocumentTable) -> None:
        """Check that the version holds ``passages`` passages and can be read back, then store
        ``documents`` (what ``--incremental`` compares) and, last, ``manifest``: a version is
        complete once its manifest exists. Raises BuildError."""

    @abstractmethod
    def discard(self) -> None:
        """Remove what this build wrote (it failed or was interrupted)."""


class Engine(ABC):
    """Where versions of one index live."""

    # Bumped when the engine's on-disk layout changes: versions of another
    # layout are not opened, and --incremental rebuilds them in full.
    layout: int
    location: str
    # Whether its versions rank in this process (CPU-bound Python and NumPy) rather than
    # waiting on a server: a threaded server then handles one request without a body at a
    # time per process (web/serve.py).
    ranks_in_process: bool = False

    @abstractmethod
    def current_name(self) -> str | None:
        """The name of the current version; None when there is none. Raises IndexUnavailable."""

    @abstractmethod
    def versions(self) -> list[str]:
        """The complete versions, newest first (what a server falls back on)."""

    @abstractmethod
    def open(self, name: str) -> IndexVersion:
        """Open a complete version for searching. Raises IndexUnavailable."""

    @abstractmethod
    def lock(self) -> AbstractContextManager[Any]:
        """Held by the one running build; raises IndexLocked at once when taken."""

    @abstractmethod
    def previous(self) -> CurrentVersion | None:
        """The current version's manifest and documents record, or None (for ``--incremental``)."""

    @abstractmethod
    def new_build(self, analysis: Analysis, base: str | None = None) -> Build:
        """Start a new version: empty, or a copy of the version ``base`` to change."""

    @abstractmethod
    def switch(self, build: Build) -> None:
        """Make a finished build the current version, atomically."""

    # The last reindex's report, one per index: how it ended (ok, error, when, how long)
    # and what it did. Operators and /metrics read it.
    report_path: Path

    def keep_report(self, report: dict[str, Any]) -> None:
        """Keep ``report`` as the last reindex's, atomically; best effort (a read-only or full
        disk: the reindex itself has said how it ended)."""
        folder = self.report_path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temp = folder / f".{self.report_path.name}.{os.getpid()}"
            temp.write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")
            os.replace(temp, self.report_path)
        except OSError:
            pass

    def last_report(self) -> dict[str, Any] | None:
        """The last reindex's report (None when none is kept)."""
        try:
            report: dict[str, Any] = json.loads(self.report_path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return report

    def discard_unfinished(self) -> None:  # noqa: B027 (an engine with nothing to remove keeps this)
        """Remove what killed builds left (called first, under the lock): by default nothing."""

    @abstractmethod
    def clean(self, keep: int) -> None:
        """Remove unfinished builds and complete versions beyond the newest ``keep`` (never the current)."""
