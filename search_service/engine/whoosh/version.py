"""An opened Whoosh index version: ranking through :mod:`search_service.engine.bm25`,
stored passages, documents."""

from __future__ import annotations

import functools
import gc
import pickle
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from whoosh.reading import MultiReader

from search_service.engine.base import IndexVersion, Ranked, Record
from search_service.engine.bm25 import TermScorer, rank
from search_service.engine.plan import QueryPlan
from search_service.engine.whoosh.layout import GROUPS, ORDER
from search_service.engine.whoosh.postings import ReaderSource, field_lengths, live_mask, rank_files, section_passages
from search_service.engine.whoosh.rankfile import open_rankfile
from search_service.engine.whoosh.schema import build_schema
from search_service.engine.whoosh.store import open_index
from search_service.errors import IndexUnavailable, SearchError, VersionDamaged
from search_service.fields import Ranking
from search_service.text.analysis import AnalysisConfig, get_analysis

T = TypeVar("T")


def _readable(method: Callable[..., T]) -> Callable[..., T]:
    """A file of the version that cannot be read (truncated, removed) is VersionDamaged, not a crash."""

    @functools.wraps(method)
    def wrapper(self: WhooshVersion, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except SearchError:
            raise
        except Exception as exc:  # noqa: BLE001  (struct.error, EOFError, OSError, ... from a damaged segment)
            raise VersionDamaged(f"index version {self.name!r} cannot be read: {type(exc).__name__}: {exc}") from None

    return wrapper


class WhooshVersion(IndexVersion):
    """One version folder, opened with its files read by ``pread`` (:mod:`.store`)."""

    def __init__(
        self, name: str, path: Path, manifest: dict[str, Any], ranking: Ranking, cache_bytes: int, cache_dir: str = ""
    ) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.ranking = ranking
        self._local = threading.local()
        failure = None
        # Whoosh leaves open the file it failed on when a segment is corrupt; it is
        # closed when the exception is dropped, which must not warn or leak.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                self.analysis = get_analysis(AnalysisConfig.from_dict(manifest["analysis"]), cache_dir)
                self._ix = open_index(path, build_schema(self.analysis))
                searcher = self._local.searcher = self._ix.searcher()
                reader = searcher.reader()
                self.doc_count = reader.doc_count_all()
                self._ranks = rank_files(reader)
                self._groups = np.load(path / GROUPS, allow_pickle=False)
                order = np.load(path / ORDER, allow_pickle=False)
                for file, array in ((GROUPS, self._groups), (ORDER, order)):
                    if len(array) != self.doc_count:
                        raise ValueError(f"{file} has {len(array)} passages, the index {self.doc_count}")
                # A version built anew has its passages in corpus order: no need to look the order up.
                self._order = None if np.array_equal(order, np.arange(self.doc_count)) else order
                self.scorer = term_scorer(reader, manifest.get("avg_field_length") or {}, ranking, cache_bytes)
                self._related = section_passages(reader, "related")
                self.empty_fields = self.scorer.empty_fields
                self.analysis.initialize()  # a segmenter this process lacks fails here
                count = searcher.doc_count()
                if count != manifest.get("passage_count"):
                    failure = (
                        f"index version {name!r} holds {count} passages, "
                        f"its manifest says {manifest.get('passage_count')}"
                    )
            except SearchError as exc:  # e.g. built with a segmenter this process lacks
                failure = f"index version {name!r} cannot be opened: {exc.message}"
            except Exception as exc:  # noqa: BLE001  (a truncated or corrupt segment file)
                failure = f"index version {name!r} cannot be opened: {type(exc).__name__}: {exc}"
            if failure is not None:
                self._ix = self._local = None  # type: ignore[assignment]
                gc.collect()
        if failure is not None:
            raise IndexUnavailable(failure)
        # What check() compares: a file truncated, replaced or removed since.
        self._files = {p.name: p.stat().st_size for p in path.iterdir() if p.is_file()}

    def check(self) -> None:
        for name, size in self._files.items():
            try:
                now = (self.path / name).stat().st_size
            except OSError:
                now = None
            if now != size:
                raise VersionDamaged(
                    f"index version {self.name!r} cannot be read: {name} "
                    f"{'is gone' if now is None else f'changed size ({size} -> {now} bytes)'}"
                )

    def _searcher(self) -> Any:
        # Whoosh readers seek and read shared file handles: one searcher per thread.
        s = getattr(self._local, "searcher", None)
        if s is None:
            s = self._local.searcher = self._ix.searcher()
        return s

    @_readable
    def rank(self, plan: QueryPlan, limit: int, collapse: bool) -> Ranked:
        return rank(
            self.scorer,
            ReaderSource(self._searcher(), self._ranks),
            plan,
            limit,
            self._groups if collapse else None,
            self.ranking.common_ratio,
            damped=(self._related, self.ranking.related),
            order=self._order,
        )

    @_readable
    def stored(self, ref: Any) -> Record:
        # Whoosh's ``stored_fields`` also filters them by the schema, for fields
        # removed since they were written; a version's schema never changes.
        reader = self._searcher().reader()
        docnum = int(ref)
        if isinstance(reader, MultiReader):
            segment, docnum = reader._segment_and_docnum(docnum)
            reader = reader.readers[segment]
        record: Record = reader._perdoc.stored_fields(docnum)
        return record

    @_readable
    def passage(self, passage_id: str) -> Record | None:
        record: Record | None = self._searcher().document(passage_id=passage_id)
        return record

    @_readable
    def document(self, doc_id: str, start: int = 0, size: int = 100) -> tuple[list[Record], int]:
        found = ReaderSource(self._searcher()).term_postings("doc_id", doc_id)
        if found is None:
            return [], 0
        ids = found[0]
        if self.scorer.has_deletions:
            ids = ids[self.scorer.live[ids]]
        # A document's passages are written together, in order: document numbers
        # follow their ordinals, so a page is a slice, and only it is read.
        page = [self.stored(d) for d in ids[start : start + size]]
        return sorted(page, key=lambda s: s["ordinal"]), len(ids)

    @_readable
    def doc_frequency(self, field: str, term: str) -> int:
        # Deleted passages included, as Whoosh counts them (the gram fields are only in the
        # ranking postings, not in Whoosh's term table).
        found = ReaderSource(self._searcher(), self._ranks).term_postings(field, term)
        return 0 if found is None else len(found[0])

    def size_bytes(self) -> int:
        return sum(self._files.values())  # as opened (check() says when that changes)

    def size_by_part(self) -> dict[str, int]:
        """The version's bytes by part: Whoosh's postings (positions and block statistics) and
        term dictionary, the ranking postings by field, each field's lengths, the stored
        fields (split by field in the proportion a sample of passages shows), and the
        version's own files. The parts add up to :meth:`size_bytes`."""
        parts: dict[str, int] = {}

        def add(part: str, size: int) -> None:
            parts[part] = parts.get(part, 0) + size

        inside = 0  # bytes of the segments' files, within their compound files
        for segment, _ in self._searcher().reader().leaf_readers():
            storage, prefix = segment._storage, segment._segment.make_filename(".")
            for name in storage.list():
                if not name.startswith(prefix) or name.endswith(".seg"):
                    continue
                size = storage.file_length(name)
                inside += size
                kind = name.rsplit(".", 1)[-1]
                if name.endswith("._stored.col"):
                    shares = self._stored_shares(segment)
                    for field, share in shares.items():
                        add(f"stored: {field}", int(size * share))
                    add(
                        f"stored: {max(shares, key=shares.__getitem__)}",
                        size - sum(int(size * v) for v in shares.values()),
                    )
                elif kind == "col":
                    add(f"lengths: {name.rsplit('.', 2)[-2].lstrip('_').removesuffix('_len')}", size)
                elif kind == "rnk":
                    rank = open_rankfile(segment)
                    by_field = rank.bytes_by_field() if rank is not None else {}
                    for field, part in by_field.items():
                        add(f"ranking postings: {field or 'table'}", part)
                    add("ranking postings: table", size - sum(by_field.values()))  # footer, field list
                else:
                    add({"pst": "whoosh postings", "trm": "whoosh terms"}.get(kind, f"whoosh .{kind}"), size)
        compound = 0
        for name, size in self._files.items():
            if name.endswith(".seg"):
                compound += size
            else:
                add("whoosh table of contents" if name.endswith(".toc") else name, size)
        add("whoosh compound files' tables", compound - inside)  # what they hold beyond their parts
        return parts

    def _stored_shares(self, segment: Any, sample: int = 2000) -> dict[str, float]:
        """Each stored field's share of a segment's stored bytes, from a sample of its passages."""
        count = segment.doc_count_all()
        step = max(1, count // sample)
        sizes: dict[str, int] = {}
        for docnum in range(0, count, step):
            for field, value in (segment._perdoc.stored_fields(docnum) or {}).items():
                sizes[field] = sizes.get(field, 0) + len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        total = sum(sizes.values()) or 1
        return {field: size / total for field, size in sizes.items()}

    def cache_info(self) -> dict[str, int]:
        return self.scorer.cache_info()


def term_scorer(reader: Any, avg_lengths: dict[str, float], ranking: Ranking, cache_bytes: int) -> TermScorer:
    doc_count = reader.doc_count_all()
    scored = [f for f, w in ranking.weights().items() if w > 0]
    # Whoosh: avgfl = the manifest's value, else the field's total / doc_count_all, else 1.
    avg = {f: avg_lengths.get(f) or (reader.field_length(f) / (doc_count or 1)) or 1 for f in scored}
    return TermScorer(
        doc_count,
        {f: field_lengths(reader, f) for f in scored},
        avg,
        live_mask(reader),
        k1=ranking.k1,
        b=ranking.b,
        cache_bytes=cache_bytes,
    )
