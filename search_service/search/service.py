"""Answering queries from the current index version.

:class:`SearchService` is the one object the web app, the CLI and the
evaluation use. It asks the engine which version is current (at most every
``reload_seconds``), opens a new one when reindex has switched, and turns a
:class:`SearchRequest` into ranked, highlighted passages: plan the query
(:mod:`.planner`), have the version rank the plan, build the hits with their
highlights (:mod:`.highlight`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from search_service.engine import open_engine
from search_service.engine.base import IndexVersion
from search_service.engine.plan import QueryPlan
from search_service.errors import IndexUnavailable, NotFound, VersionDamaged, VersionGone
from search_service.fields import Ranking
from search_service.search.cache import ResultCache
from search_service.search.highlight import Marker, render
from search_service.search.planner import Planner
from search_service.search.request import SearchRequest, clean_text
from search_service.search.results import DocumentRecord, Hit, PassageRecord, SearchResult, stored_passage
from search_service.settings import Settings
from search_service.text.analysis import Analysis
from search_service.text.normalize import Normalized
from search_service.text.synonyms import Synonyms

log = logging.getLogger(__name__)
LABEL_CACHE = 20_000  # normalized titles and headings kept per version


@dataclass
class Served:
    """One opened version and what searching it needs; in-flight requests keep the one they started with."""

    index: IndexVersion
    analysis: Analysis
    synonyms: Synonyms
    planner: Planner
    results: ResultCache
    # Titles and headings repeat across a document's passages: normalize each once.
    labels: dict[str, Normalized] = dataclasses.field(default_factory=dict)

    def label(self, text: str) -> Normalized:
        found = self.labels.get(text)
        if found is None:
            if len(self.labels) >= LABEL_CACHE:
                self.labels.clear()
            found = self.labels[text] = self.analysis.normalize(text)
        return found

    @property
    def name(self) -> str:
        return self.index.name


class SearchService:
    """Answers queries from the current version of the engine's index."""

    def __init__(self, settings: Settings | None = None, ranking: Ranking | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.ranking = ranking or Ranking()
        self.engine = open_engine(self.settings, self.ranking)
        self._lock = threading.Lock()
        self._version: Served | None = None
        self._checked = 0.0
        self.last_error: str | None = None
        self._failed: tuple[str, IndexUnavailable] | None = None  # versions never change: don't retry one

    # -- versions -------------------------------------------------------------

    def current(self) -> Served:
        """The version to answer from, reopening when the current version has switched."""
        version = self._version
        now = time.monotonic()
        if version is not None and now - self._checked < self.settings.reload_seconds:
            return version
        with self._lock:
            version = self._version
            try:
                name = self.engine.current_name()
            except IndexUnavailable as exc:
                self._checked = now  # asked again after reload_seconds, not at every request
                return self._keep_or_raise(version, exc)
            self._checked = now
            if version is not None and name == version.name:
                self.last_error = None  # the engine answers again, and still names our version
                return version
            if self._failed is not None and self._failed[0] == name:
                return self._keep_or_raise(version, self._failed[1], broken=name)
            try:
                new = self._open(name)
            except IndexUnavailable as exc:
                if name is not None:
                    self._failed = (name, exc)
                return self._keep_or_raise(version, exc, broken=name)
            self._version = new
            self.last_error = None
            if version is not None:
                log.info("switched index version %s -> %s", version.name, new.name)
            return new

    def close(self) -> None:
        """Forget the opened version (before forking workers, or at shutdown)."""
        with self._lock:
            self._version = None
            self._checked = 0.0

    def _keep_or_raise(self, version: Served | None, exc: IndexUnavailable, broken: str | None = None) -> Served:
        # A broken or missing new version must not take a working server down:
        # keep serving the last good version and say why on /health. With none
        # (a server starting, or its version damaged), serve the newest complete
        # version that can be read.
        before, self.last_error = self.last_error, exc.message
        if version is None:
            version = self._fallback(exc, broken)
            self._version = version
            self._checked = time.monotonic()
            self.last_error = f"{exc.message}; serving the older version {version.name}"
        if self.last_error != before:  # once while it lasts, not once a request
            log.error("keeping index version %s: %s", version.name, exc.message)
        return version

    def _fallback(self, exc: IndexUnavailable, broken: str | None) -> Served:
        try:
            names = self.engine.versions()
        except IndexUnavailable:
            raise exc from None
        for name in names:
            if name == broken:
                continue
            try:
                return self._open(name)
            except IndexUnavailable:
                continue
        raise exc

    def _broken(self, version: Served, exc: IndexUnavailable) -> Served:
        """``version`` can no longer be read: the version to answer from instead (or IndexUnavailable)."""
        with self._lock:
            if self._version is not None and self._version is not version:
                return self._version  # another thread moved on already
            log.error("index version %s cannot be read: %s", version.name, exc.message)
            self._failed = (version.name, exc)
            self._version = None
            return self._keep_or_raise(None, exc, broken=version.name)

    def _open(self, name: str | None) -> Served:
        if name is None:
            raise IndexUnavailable(f"no index in {self.engine.location!r}: run `search-service reindex` first")
        index = self.engine.open(name)
        analysis = index.analysis
        synonyms = Synonyms.parse(index.manifest.get("synonyms", []), analysis)
        return Served(
            index,
            analysis,
            synonyms,
            Planner(
                analysis,
                synonyms,
                self.ranking,
                index.empty_fields,
                _filter_keys(index.manifest),
                self.settings.max_query_terms,
            ),
            ResultCache(int(self.settings.result_cache_mb * 1_000_000)),
        )

    # -- queries --------------------------------------------------------------

    def build_query(self, version: Served, request: SearchRequest | str) -> QueryPlan:
        """The plan of a request (or of a bare query text)."""
        if isinstance(request, str):
            return version.planner.plan(request)
        return version.planner.plan(request.q, request.doc, request.filters)

    def search(self, request: SearchRequest) -> SearchResult:
        began = time.perf_counter()
        version = self.current()
        cached = version.results.get(request)
        if cached is not None:
            return dataclasses.replace(cached, took_ms=round((time.perf_counter() - began) * 1000, 2))
        try:
            result = self._search(version, request, began)
        except VersionGone:
            # Removed by a newer reindex since we last looked: look again, once.
            self._checked = 0.0
            version = self.current()
            result = self._search(version, request, began)
        except VersionDamaged as exc:
            # Its files were damaged since it was opened: answer from another version, once.
            # (An engine that does not answer for a while is a 503, and the version stays.)
            version = self._broken(version, exc)
            result = self._search(version, request, began)
        version.results.put(request, result)
        return result

    def _search(self, version: Served, request: SearchRequest, began: float) -> SearchResult:
        plan = self.build_query(version, request)
        # Only the first max_page_depth hits can be paged to (as Meilisearch's maxTotalHits):
        # a page past them is empty, and ranking it would cost as much as ranking them all.
        depth = self.settings.max_page_depth
        ranked = version.index.rank(plan, max(1, min(request.page * request.size, depth)), request.collapse == "doc")
        offset = (request.page - 1) * request.size
        marker = Marker(plan.marks)
        hits = [
            self._hit(version, rank, ranked.scores[i], version.index.stored(ranked.refs[i]), marker)
            for rank, i in enumerate(range(offset, len(ranked.refs)), start=offset + 1)
        ]
        took = (time.perf_counter() - began) * 1000
        pages = -(-min(ranked.total, depth) // request.size)
        return SearchResult(
            request.q, ranked.total, request.page, request.size, pages, round(took, 2), hits, version.name
        )

    def _hit(self, version: Served, rank: int, score: float, stored: dict[str, Any], marker: Marker) -> Hit:
        text = stored["text"]
        normalized = stored.get("normalized")
        if normalized is None:  # the text is its own normalization
            matches = marker.matches_aligned(text)
        elif normalized:  # normalized character for character
            matches = marker.matches_aligned(normalized)
        else:  # normalization changed the length: map offsets again
            matches = marker.matches(version.analysis.normalize(text))
        title, heading = stored.get("title", ""), stored.get("heading", "")
        title_matches = marker.matches(version.label(title)) if title else []
        heading_matches = marker.matches(version.label(heading)) if heading else []
        return Hit(
            rank=rank,
            score=round(float(score), 4),
            passage_id=stored["passage_id"],
            doc_id=stored["doc_id"],
            title=title,
            heading=heading,
            text=text,
            highlight=render(text, matches, self.settings.snippet_chars),
            matches=matches,
            title_highlight=render(title, title_matches),
            title_matches=title_matches,
            heading_highlight=render(heading, heading_matches),
            heading_matches=heading_matches,
            section=stored.get("section") or "main",
            page=stored.get("page"),
            source=stored.get("source", ""),
            metadata=stored.get("metadata") or {},
            ordinal=stored.get("ordinal", 0),
            start=stored.get("start", 0),
            end=stored.get("end", 0),
        )

    # -- documents, passages, analysis, stats ------------------------------------

    def passage(self, passage_id: str) -> PassageRecord:
        stored = self.current().index.passage(passage_id)
        if stored is None:
            raise NotFound(f"no passage {passage_id!r}", code="passage_not_found")
        return stored_passage(stored)

    def document(self, doc_id: str, start: int = 0, size: int = 100) -> DocumentRecord:
        """A document and its passages ``start`` to ``start + size`` (a page of a long one)."""
        index = self.current().index
        found, total = index.document(doc_id, start, size)
        if not total:
            raise NotFound(f"no document {doc_id!r}", code="document_not_found")
        first = found[0] if found else index.document(doc_id, 0, 1)[0][0]
        return DocumentRecord(
            doc_id,
            first.get("title", ""),
            first.get("source", ""),
            first.get("metadata") or {},
            total,
            start,
            size,
            [stored_passage(s) for s in found],
        )

    def mark(self, q: str, texts: list[str]) -> list[str]:
        """Each of ``texts`` as HTML, whole, with the words of the query ``q`` marked
        as a hit marks them (the document page)."""
        version = self.current()
        marker = Marker(self.build_query(version, clean_text(q)).marks)
        return [render(text, marker.matches(version.analysis.normalize(text))) for text in texts]

    def analyze(self, text: str) -> dict[str, Any]:
        text = clean_text(text)
        version = self.current()
        trace = version.analysis.trace(text)
        expansions = {t["term"]: version.synonyms.expand(t["term"]) for t in trace["words"]}
        trace["synonyms"] = {term: words for term, words in expansions.items() if words}
        trace["query"] = version.planner.describe(
            self.build_query(version, text), version.index.doc_frequency, version.index.doc_count
        )
        return trace

    def stats(self) -> dict[str, Any]:
        version = self.current()
        m = version.index.manifest
        config = version.analysis.config
        return {
            "version": version.name,
            "created": m.get("created"),
            "documents": m.get("document_count"),
            "passages": m.get("passage_count"),
            "skipped": len(m.get("skipped", [])),
            "analysis": {
                "opencc_config": config.opencc_config,
                "segmenter": config.segmenter,
                "userdict_words": len(config.userdict),
                "stopwords": len(config.stopwords),
            },
            "synonym_groups": len(version.synonyms.groups),
            "filter_keys": list(version.planner.filter_keys or ()),
            "index_bytes": version.index.size_bytes(),
        }

    def cache_counts(self) -> tuple[str | None, dict[str, tuple[int, int]]]:
        """The served version's name, and its caches' (hits, misses) so far in this process."""
        version = self._version
        if version is None:
            return None, {}
        counts = {"result": (version.results.hits, version.results.misses)}
        posting = version.index.cache_info()
        if "hits" in posting:
            counts["posting"] = (posting["hits"], posting["misses"])
        return version.name, counts

    def last_reindex(self) -> dict[str, Any] | None:
        """The last reindex's report, as the engine keeps it (None when none ran)."""
        return self.engine.last_report()

    def health(self) -> dict[str, Any]:
        """Raises IndexUnavailable when no version can be served. Checks that the
        served version can still be read, so that it never says ok while searches fail."""
        version = self.current()
        try:
            version.index.check()
        except VersionDamaged as exc:
            version = self._broken(version, exc)
        status = {"status": "ok", "version": version.name, "passages": version.index.manifest.get("passage_count")}
        if self.last_error:
            status["status"] = "degraded"
            status["warning"] = self.last_error
        return status


def _filter_keys(manifest: dict[str, Any]) -> tuple[str, ...] | None:
    keys = manifest.get("filter_keys")
    return tuple(keys) if keys is not None else None
