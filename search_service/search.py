"""Step 5 of the pipeline: answer queries from the current index version.

:class:`SearchService` is the one object the web app, the CLI and the
evaluation use. It opens the version named by ``CURRENT``, notices when
reindex switches to a new one (checked at most every ``reload_seconds``), and
turns a :class:`SearchRequest` into ranked, highlighted passages.

Ranking: each plain clause is analyzed exactly like the indexed text and
becomes a disjunction of word terms (precision) and character bigrams
(recall) over body, heading and title, each with its weight; BM25F scores the
sum, so a passage that matches more of a question ranks higher and a passage
missing one word is still found. The scores are summed by
:class:`~search_service.score.TermScorer` over whole posting lists at once;
Whoosh's matchers only decide the boolean parts (phrases, ``+``, ``-``,
filters), which constrain the candidates but do not score.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from whoosh import query as wq
from whoosh.reading import MultiReader

from search_service.analyze import Analysis, AnalysisConfig, Term, get_analysis
from search_service.errors import IndexUnavailable, InvalidRequest, NotFound, SearchError
from search_service.highlight import Marker, render
from search_service.index import META_PREFIX, SCHEMA_VERSION, meta_field_name
from search_service.query import parse_query
from search_service.score import Alternative, TermScorer
from search_service.settings import Settings
from search_service.store import open_index
from search_service.versions import IndexRoot

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")


@dataclass(frozen=True)
class Ranking:
    """Field weights and BM25F parameters (measured in the evaluation, see README)."""

    body: float = 1.0
    grams: float = 0.5
    heading: float = 0.6
    heading_grams: float = 0.3
    title: float = 0.6
    title_grams: float = 0.3
    synonym: float = 0.8
    common_ratio: float = 0.05
    k1: float = 1.2
    b: float = 0.5

    def fields(self) -> dict[str, float]:
        """The scored fields and their weights."""
        return {"body": self.body, "grams": self.grams, "heading": self.heading,
                "heading_grams": self.heading_grams, "title": self.title, "title_grams": self.title_grams}


@dataclass(frozen=True)
class SearchRequest:
    """A validated search: build with :meth:`create`, which raises InvalidRequest."""

    q: str
    size: int = 10
    page: int = 1
    doc: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    collapse: str | None = None

    @classmethod
    def create(cls, settings: Settings, q: Any = None, size: Any = None, page: Any = None,
               doc: Any = None, filters: Any = None, collapse: Any = None) -> "SearchRequest":
        if q is None or not isinstance(q, str) or not q.strip():
            raise InvalidRequest("parameter 'q' is required and must be a non-empty string", code="missing_query")
        q = clean_text(q)
        if len(q) > settings.max_query_chars:
            raise InvalidRequest(f"parameter 'q' is longer than {settings.max_query_chars} characters", code="query_too_long")
        size_v = _int_param("size", size, 10, 1, settings.max_page_size)
        page_v = _int_param("page", page, 1, 1, None)
        if size_v * page_v > settings.max_page_depth:
            raise InvalidRequest(f"page x size must be at most {settings.max_page_depth}", code="page_too_deep")
        docs = _str_list("doc", doc)
        pairs = []
        if filters is not None and not isinstance(filters, dict):
            raise InvalidRequest("parameter 'filters' must be an object of key: value or [values]", code="bad_filter")
        for key, value in (filters or {}).items():
            if meta_field_name(key) is None:
                raise InvalidRequest(f"filter key {key!r} must be 1-40 letters, digits or '_'", code="bad_filter")
            for v in _str_list(key, value):
                pairs.append((key, v))
        if collapse not in (None, "", "doc", "none"):
            raise InvalidRequest("parameter 'collapse' must be 'doc' or 'none'", code="bad_parameter")
        return cls(q, size_v, page_v, tuple(docs), tuple(pairs), "doc" if collapse == "doc" else None)


_INTEGER = re.compile(r"[+-]?[0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace lone surrogates (valid in JSON, not in UTF-8) with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _int_param(name: str, value: Any, default: int, lo: int, hi: int | None) -> int:
    if value is None or value == "":
        return default
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _INTEGER.fullmatch(text):  # refuses floats, booleans, "1e3", "+-5", "²"
        raise InvalidRequest(f"parameter {name!r} must be an integer", code="bad_parameter")
    number = int(text)
    if number < lo or (hi is not None and number > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidRequest(f"parameter {name!r} must be {bound}", code="bad_parameter")
    return number


def _str_list(name: str, value: Any) -> list[str]:
    if value is None or value == "":
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise InvalidRequest(f"parameter {name!r} must be a string or a list of strings", code="bad_parameter")
        if str(v) != "":
            out.append(v if isinstance(v, str) else str(v))
    return out


class Synonyms:
    """Synonym groups (one comma-separated group a line), matched in normalized form."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = groups
        self._index: dict[str, list[str]] = {}
        for group in groups:
            for word in group:
                self._index.setdefault(word, []).extend(w for w in group if w != word)

    @classmethod
    def parse(cls, lines: list[str], analysis: Analysis) -> "Synonyms":
        groups = []
        for line in lines:
            words = [analysis.normalize(w.strip()).text for w in re.split(r"[,，]", line) if w.strip()]
            if len(words) > 1:
                groups.append(words)
        return cls(groups)

    def expand(self, word: str) -> list[str]:
        return self._index.get(word, [])


@dataclass
class _Version:
    """One opened index version; in-flight requests keep the one they started with."""

    name: str
    path: Path
    ix: Any
    manifest: dict[str, Any]
    analysis: Analysis
    synonyms: Synonyms
    scorer: TermScorer
    results: ResultCache
    local: threading.local = field(default_factory=threading.local)
    _groups: np.ndarray | None = None

    def searcher(self) -> Any:
        # Whoosh readers seek and read shared file handles: one searcher per thread.
        s = getattr(self.local, "searcher", None)
        if s is None:
            s = self.local.searcher = self.ix.searcher()
        return s

    def groups(self) -> np.ndarray:
        """Each passage's document as a small integer (for ``collapse=doc``), built on first use."""
        if self._groups is None:
            groups = np.zeros(self.scorer.doc_count, dtype=np.int32)
            numbers: dict[str, int] = {}
            for segment, base in self.searcher().reader().leaf_readers():
                for doc_id in segment.lexicon("doc_id"):
                    number = numbers.setdefault(doc_id, len(numbers))
                    groups[np.fromiter(segment.postings("doc_id", doc_id).all_ids(), dtype=np.int64) + base] = number
            self._groups = groups
        return self._groups


class ResultCache:
    """The last results of one index version, by request (least recently used dropped first).

    Sites and chatbots repeat their popular queries; a repeated request is
    answered without ranking or highlighting again, as Solr's
    ``queryResultCache`` does. An index version never changes, so entries
    never go stale: a new version starts with an empty cache.

    ``size`` counts pages of up to :data:`HITS_PER_ENTRY` hits: a result of
    100 hits takes ten places. Counting results alone would let ``size=100``
    requests hold ten times the memory (about 2 KB a hit) the default
    setting was sized for.
    """

    HITS_PER_ENTRY = 10

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._entries: OrderedDict[SearchRequest, tuple[SearchResult, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request: SearchRequest) -> SearchResult | None:
        if not self.size:
            return None
        with self._lock:
            found = self._entries.get(request)
            if found is None:
                return None
            self._entries.move_to_end(request)
            return found[0]

    def put(self, request: SearchRequest, result: SearchResult) -> None:
        weight = max(1, -(-len(result.hits) // self.HITS_PER_ENTRY))
        if weight > self.size:
            return
        with self._lock:
            old = self._entries.pop(request, None)
            if old is not None:
                self.used -= old[1]
            self._entries[request] = (result, weight)
            self.used += weight
            while self.used > self.size:
                self.used -= self._entries.popitem(last=False)[1][1]


class QueryPlan(NamedTuple):
    """What a query asks for: scored parts, boolean constraints, the terms to mark.

    Each part is one term, or several spellings of one word of which the best
    counts (a synonym group). ``must`` and ``must_not`` are Whoosh queries
    (phrases, ``+word``, ``-word``) that passages must or must not match.
    """

    parts: list[tuple[Alternative, ...]]
    must: wq.Query | None
    must_not: wq.Query | None
    marks: set[str]


@dataclass
class Hit:
    rank: int
    score: float
    passage_id: str
    doc_id: str
    title: str
    heading: str
    text: str
    highlight: str
    matches: list[list[int]]
    source: str
    metadata: dict[str, Any]
    ordinal: int
    start: int
    end: int


@dataclass
class PassageRecord:
    """A stored passage, as /passages and /documents return it."""

    passage_id: str
    doc_id: str
    ordinal: int
    title: str
    heading: str
    text: str
    start: int
    end: int
    source: str
    metadata: dict[str, Any]


@dataclass
class DocumentRecord:
    """A document and its passages in order."""

    doc_id: str
    title: str
    source: str
    metadata: dict[str, Any]
    passages: list[PassageRecord]


@dataclass
class SearchResult:
    query: str
    total: int
    page: int
    size: int
    took_ms: float
    hits: list[Hit]
    version: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON body; what ``dataclasses.asdict`` gives, without deep-copying every hit."""
        out = dict(vars(self))
        out["hits"] = [dict(vars(h)) for h in self.hits]
        return out


class SearchService:
    """Opens the current index version of ``settings.index_dir`` and answers queries."""

    def __init__(self, settings: Settings | None = None, ranking: Ranking | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.ranking = ranking or Ranking()
        self.root = IndexRoot(self.settings.index_dir)
        self._lock = threading.Lock()
        self._version: _Version | None = None
        self._checked = 0.0
        self.last_error: str | None = None
        self._failed: tuple[str, IndexUnavailable] | None = None  # versions never change: don't retry one

    # -- versions -------------------------------------------------------------

    def current(self) -> _Version:
        """The version to answer from, reopening when CURRENT has switched."""
        version = self._version
        now = time.monotonic()
        if version is not None and now - self._checked < self.settings.reload_seconds:
            return version
        with self._lock:
            version = self._version
            try:
                name = self.root.current_name()
            except IndexUnavailable as exc:
                return self._keep_or_raise(version, exc)
            self._checked = now
            if version is not None and name == version.name:
                return version
            if self._failed is not None and self._failed[0] == name:
                return self._keep_or_raise(version, self._failed[1])
            try:
                new = self._open(name)
            except IndexUnavailable as exc:
                if name is not None:
                    self._failed = (name, exc)
                return self._keep_or_raise(version, exc)
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

    def _keep_or_raise(self, version: _Version | None, exc: IndexUnavailable) -> _Version:
        # A broken or missing new version must not take a working server down:
        # keep serving the last good version and say why on /health.
        self.last_error = exc.message
        if version is None:
            raise exc
        log.error("keeping index version %s: %s", version.name, exc.message)
        return version

    def _open(self, name: str | None) -> _Version:
        if name is None:
            raise IndexUnavailable(f"no index in {str(self.root.root)!r}: run `search-service reindex` first")
        path = self.root.versions_dir / name
        manifest = self.root.manifest(path)  # IndexUnavailable when missing or unfinished
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise IndexUnavailable(f"index version {name!r} was written in layout {manifest.get('schema_version')}, "
                                   f"this release reads layout {SCHEMA_VERSION}: run `search-service reindex`")
        failure = None
        # Whoosh leaves open the file it failed on when a segment is corrupt; it is
        # closed when the exception is dropped, which must not warn or leak.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                ix = open_index(path)
                config: AnalysisConfig = ix.schema["body"].analyzer.config
                analysis = get_analysis(config)
                searcher = ix.searcher()
                r = self.ranking
                scorer = TermScorer(searcher.reader(), [f for f, w in r.fields().items() if w > 0],
                                    manifest.get("avg_field_length") or {}, k1=r.k1, b=r.b,
                                    cache_bytes=self.settings.posting_cache_mb * 1_000_000)
                version = _Version(name, path, ix, manifest, analysis,
                                   Synonyms.parse(manifest.get("synonyms", []), analysis), scorer,
                                   ResultCache(self.settings.result_cache_size))
                version.local.searcher = searcher
                analysis.initialize()  # an engine this process lacks fails here
                count = searcher.doc_count()
                if count != manifest.get("passage_count"):
                    failure = (f"index version {name!r} holds {count} passages, "
                               f"its manifest says {manifest.get('passage_count')}")
            except SearchError as exc:  # e.g. built with a segmenter this process lacks
                failure = f"index version {name!r} cannot be opened: {exc.message}"
            except Exception as exc:  # a truncated or corrupt segment file
                failure = f"index version {name!r} cannot be opened: {type(exc).__name__}: {exc}"
            if failure is not None:
                version = ix = None  # type: ignore[assignment]
                gc.collect()
        if failure is not None:
            raise IndexUnavailable(failure)
        return version

    # -- queries --------------------------------------------------------------

    def build_query(self, version: _Version, text: str) -> QueryPlan:
        """The scored parts of ``text``, its boolean constraints and the normalized terms to highlight."""
        parts: list[tuple[Alternative, ...]] = []
        must: list[wq.Query] = []
        must_not: list[wq.Query] = []
        marks: set[str] = set()
        for clause in parse_query(text):
            words = version.analysis.words(clause.text)
            grams = _query_grams(version.analysis, clause.text)
            if not words and not grams:  # nothing to search for (punctuation, stopwords)
                continue
            # Whoosh queries only for what passages must (not) match: most clauses only score.
            constrains = clause.kind == "phrase" or clause.occur != "should"
            matcher = (self._phrase if clause.kind == "phrase" else self._contains)(words, grams) if constrains else None
            if clause.occur == "must_not":
                must_not.append(matcher)
                continue
            marks.update(t.text for t in words)
            marks.update(g for g in grams if len(g) > 1 or len(grams) == 1)
            if matcher is not None:
                must.append(matcher)
            parts.extend(self._scored(version, words, grams))
        return QueryPlan(parts, wq.And(must) if must else None, wq.Or(must_not) if must_not else None, marks)

    def _scored(self, version: _Version, words: list[Term], grams: list[str]) -> list[tuple[Alternative, ...]]:
        """The weighted scoring parts of one clause."""
        r = self.ranking
        parts: list[tuple[Alternative, ...]] = []
        empty = version.scorer.empty_fields  # no passage has them: they would only cost time

        def add(field: str, term: str, weight: float) -> None:
            if weight > 0 and field not in empty:
                parts.append(((field, term, weight),))

        for t in sorted({w.text for w in words}):
            alternatives = version.synonyms.expand(t)
            if alternatives:
                # A synonym is another spelling of the same word, not more evidence:
                # the best of the alternatives counts, once.
                parts.append((("body", t, r.body), *(("body", s, r.body * r.synonym) for s in alternatives)))
            else:
                add("body", t, r.body)
            add("heading", t, r.heading)
            add("title", t, r.title)
        for g in sorted(set(grams)):
            add("grams", g, r.grams)
            add("heading_grams", g, r.heading_grams)
            add("title_grams", g, r.title_grams)
        return parts

    @staticmethod
    def _contains(words: list[Term], grams: list[str]) -> wq.Query | None:
        """Matches passages containing the clause: each word, as a word or as its bigrams."""
        precise = _precise(words)
        if not precise:
            return wq.And([wq.Term("grams", g) for g in grams]) if grams else None
        parts = []
        for w in precise:
            bigrams = [w.text[i:i + 2] for i in range(len(w.text) - 1)] if _CJK.fullmatch(w.text) else []
            alternatives: list[wq.Query] = [wq.Term("body", w.text)]
            if bigrams:
                alternatives.append(wq.And([wq.Term("grams", g) for g in bigrams]))
            parts.append(wq.Or(alternatives))
        return wq.And(parts)

    @staticmethod
    def _phrase(words: list[Term], grams: list[str]) -> wq.Query | None:
        precise = _precise(words)
        if len(precise) > 1:
            return wq.Phrase("body", [w.text for w in precise])
        if precise:
            return wq.Term("body", precise[0].text)
        return wq.And([wq.Term("grams", g) for g in grams]) if grams else None

    def search(self, request: SearchRequest) -> SearchResult:
        began = time.perf_counter()
        version = self.current()
        cached = version.results.get(request)
        if cached is not None:
            return dataclasses.replace(cached, took_ms=round((time.perf_counter() - began) * 1000, 2))
        result = self._search(version, request, began)
        version.results.put(request, result)
        return result

    def _search(self, version: _Version, request: SearchRequest, began: float) -> SearchResult:
        plan = self.build_query(version, request.q)
        top, total, scores = self._rank(version, plan, request)
        offset = (request.page - 1) * request.size
        reader = version.searcher().reader()
        marker = Marker(plan.marks)
        hits = [self._hit(version, rank, scores[i], _stored_fields(reader, int(top[i])), marker)
                for rank, i in enumerate(range(offset, len(top)), start=offset + 1)]
        took = (time.perf_counter() - began) * 1000
        return SearchResult(request.q, total, request.page, request.size, round(took, 2), hits, version.name)

    def _rank(self, version: _Version, plan: QueryPlan, request: SearchRequest
              ) -> tuple[np.ndarray, int, np.ndarray]:
        """The best ``page * size`` passages (document numbers, best first), the total, their scores.

        Every part adds its weighted BM25F scores into one vector. Candidates
        are split by how selective the parts are: a passage must match at least
        one selective part (in at most ``Ranking.common_ratio`` of the
        passages), and common parts only add to the score of passages found
        that way — the ranking a plain disjunction gives, minus the long tail
        of passages that share only a common word with the query. When that
        finds fewer passages than asked for, every matching passage counts,
        so recall is never lost. Ties go to the earlier passage, as in Whoosh.
        """
        none = (np.empty(0, np.int64), 0, np.empty(0, np.float64))
        if not plan.parts and plan.must is None:
            return none
        scorer = version.scorer
        searcher = version.searcher()
        reader = searcher.reader()
        n = scorer.doc_count
        found_ids: list[np.ndarray] = []
        found_scores: list[np.ndarray] = []
        selective: list[np.ndarray] = []
        common: list[np.ndarray] = []
        common_df = self.ranking.common_ratio * n
        for alternatives in plan.parts:
            found = scorer.best_of(reader, alternatives)
            if len(found.ids):
                found_ids.append(found.ids)
                found_scores.append(found.scores)
                (common if found.df > common_df else selective).append(found.ids)
        if not found_ids and plan.must is None:
            return none  # no term of the query is in the index
        # One pass sums every part's contribution per passage (in part order).
        scores = (np.bincount(np.concatenate(found_ids), np.concatenate(found_scores), minlength=n)
                  if found_ids else np.zeros(n, dtype=np.float64))

        allowed = scorer.live if scorer.has_deletions else None
        constraints = [(plan.must, True), (plan.must_not, False), (_filter_query(request), True)]
        for query, wanted in constraints:
            if query is not None:
                mask = np.zeros(n, dtype=bool)
                mask[np.fromiter(searcher.docs_for_query(query), dtype=np.int64)] = True
                mask = mask if wanted else ~mask
                allowed = mask if allowed is None else allowed & mask
        limit = request.page * request.size
        collapse = request.collapse == "doc"

        def candidates() -> Iterator[np.ndarray]:
            if plan.must is not None:
                yield np.flatnonzero(allowed)  # the required clauses decide; every part only scores
            elif selective:
                yield _union(selective, n)
                if common:  # only when the selective parts found too few (common lists are long)
                    yield _union(selective + common, n)
            else:
                yield _union(common, n)

        for docs in candidates():
            if plan.must is None and allowed is not None:
                docs = docs[allowed[docs]]
            top, total = _top(docs, scores[docs], limit, version.groups() if collapse else None)
            if total >= limit:
                break
        return top, total, scores[top]

    def _hit(self, version: _Version, rank: int, score: float, stored: dict[str, Any], marker: Marker) -> Hit:
        text = stored["text"]
        normalized = stored.get("normalized")
        if normalized is None:  # the text is its own normalization
            matches = marker.matches_aligned(text)
        elif normalized:  # normalized character for character
            matches = marker.matches_aligned(normalized)
        else:  # normalization changed the length: map offsets again
            matches = marker.matches(version.analysis.normalize(text))
        return Hit(
            rank=rank,
            score=round(float(score), 4),
            passage_id=stored["passage_id"],
            doc_id=stored["doc_id"],
            title=stored.get("title", ""),
            heading=stored.get("heading", ""),
            text=text,
            highlight=render(text, matches, self.settings.snippet_chars),
            matches=matches,
            source=stored.get("source", ""),
            metadata=stored.get("metadata") or {},
            ordinal=stored.get("ordinal", 0),
            start=stored.get("start", 0),
            end=stored.get("end", 0),
        )

    # -- documents, passages, analysis, stats ------------------------------------

    def passage(self, passage_id: str) -> PassageRecord:
        version = self.current()
        stored = version.searcher().document(passage_id=passage_id)
        if stored is None:
            raise NotFound(f"no passage {passage_id!r}", code="passage_not_found")
        return _passage_record(stored)

    def document(self, doc_id: str) -> DocumentRecord:
        version = self.current()
        searcher = version.searcher()
        found = sorted(searcher.documents(doc_id=doc_id), key=lambda s: s["ordinal"])
        if not found:
            raise NotFound(f"no document {doc_id!r}", code="document_not_found")
        first = found[0]
        return DocumentRecord(doc_id, first.get("title", ""), first.get("source", ""),
                              first.get("metadata") or {}, [_passage_record(s) for s in found])

    def analyze(self, text: str) -> dict[str, Any]:
        text = clean_text(text)
        version = self.current()
        trace = version.analysis.trace(text)
        expansions = {t["term"]: version.synonyms.expand(t["term"]) for t in trace["words"]}
        trace["synonyms"] = {term: words for term, words in expansions.items() if words}
        trace["query"] = self.describe(self.build_query(version, text), version)
        return trace

    def describe(self, plan: QueryPlan, version: _Version) -> str:
        """The plan as operators read it on /analyze: each part with its weight, selective or common."""
        reader = version.searcher().reader()
        out = []
        for alternatives in plan.parts:
            df = max(reader.doc_frequency(f, t) for f, t, _ in alternatives)
            text = " | ".join(f"{f}:{t}^{w:g}" for f, t, w in alternatives)
            if len(alternatives) > 1:
                text = f"best({text})"
            if not df:
                out.append(f"{text} [absent]")
            else:
                kind = "common" if df > self.ranking.common_ratio * version.scorer.doc_count else "selective"
                out.append(f"{text} [{kind}, df={df}]")
        if plan.must is not None:
            out.append(f"must: {plan.must}")
        if plan.must_not is not None:
            out.append(f"must not: {plan.must_not}")
        return "; ".join(out)

    def stats(self) -> dict[str, Any]:
        version = self.current()
        m = version.manifest
        return {
            "version": version.name,
            "created": m.get("created"),
            "documents": m.get("document_count"),
            "passages": m.get("passage_count"),
            "skipped": len(m.get("skipped", [])),
            "analysis": {"opencc_config": version.analysis.config.opencc_config,
                         "segmenter": version.analysis.config.segmenter,
                         "userdict_words": len(version.analysis.config.userdict),
                         "stopwords": len(version.analysis.config.stopwords)},
            "synonym_groups": len(version.synonyms.groups),
            "index_bytes": sum(p.stat().st_size for p in version.path.iterdir() if p.is_file()),
        }

    def health(self) -> dict[str, Any]:
        """Raises IndexUnavailable when no version can be served."""
        version = self.current()
        status = {"status": "ok", "version": version.name, "passages": version.manifest.get("passage_count")}
        if self.last_error:
            status["status"] = "degraded"
            status["warning"] = self.last_error
        return status


def _stored_fields(reader: Any, docnum: int) -> dict[str, Any]:
    """A passage's stored fields. Whoosh's ``stored_fields`` also filters them by
    the schema, for fields removed since they were written; a version's schema
    never changes, and skipping that check saves a quarter of the call."""
    if isinstance(reader, MultiReader):
        segment, docnum = reader._segment_and_docnum(docnum)
        reader = reader.readers[segment]
    return reader._perdoc.stored_fields(docnum)


def _precise(words: list[Term]) -> list[Term]:
    """The precise segmentation: per position, the longest word (sub-words share it)."""
    best: dict[int, Term] = {}
    for w in words:
        if w.pos not in best or len(w.text) > len(best[w.pos].text):
            best[w.pos] = w
    return [best[p] for p in sorted(best)]


def _query_grams(analysis: Analysis, text: str) -> list[str]:
    """Bigrams of each CJK run of the query; a one-character run stays a unigram."""
    norm = analysis.normalize(text).text
    out = []
    for run in _CJK.findall(norm):
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


def _union(id_lists: list[np.ndarray], n: int) -> np.ndarray:
    """The sorted distinct ids of ``id_lists`` (a mask beats np.unique's sort here;
    one scatter of the joined lists beats one per list)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.concatenate(id_lists)] = True
    return np.flatnonzero(mask)


def _top(docs: np.ndarray, scores: np.ndarray, limit: int, groups: np.ndarray | None
         ) -> tuple[np.ndarray, int]:
    """The ``limit`` best of ``docs`` by score, then document number; and how many there are.

    With ``groups``, only the best passage of each group counts.
    """
    if groups is not None:
        order = np.lexsort((docs, -scores))
        ranked = docs[order]
        _, first = np.unique(groups[ranked], return_index=True)
        return ranked[np.sort(first)[:limit]], len(first)
    total = len(docs)
    if total > limit:
        # Everything scoring at least the limit-th best score (ties included) is sorted.
        threshold = -np.partition(-scores, limit - 1)[limit - 1]
        keep = scores >= threshold
        docs, scores = docs[keep], scores[keep]
    return docs[np.lexsort((docs, -scores))[:limit]], total


def _filter_query(request: SearchRequest) -> wq.Query | None:
    parts: list[wq.Query] = []
    if request.doc:
        parts.append(wq.Or([wq.Term("doc_id", d) for d in request.doc]))
    by_key: dict[str, list[str]] = {}
    for key, value in request.filters:
        by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        parts.append(wq.Or([wq.Term(META_PREFIX + key, v) for v in values]))
    if not parts:
        return None
    return wq.And(parts) if len(parts) > 1 else parts[0]


def _passage_record(stored: dict[str, Any]) -> PassageRecord:
    return PassageRecord(
        passage_id=stored["passage_id"],
        doc_id=stored["doc_id"],
        ordinal=stored.get("ordinal", 0),
        title=stored.get("title", ""),
        heading=stored.get("heading", ""),
        text=stored["text"],
        start=stored.get("start", 0),
        end=stored.get("end", 0),
        source=stored.get("source", ""),
        metadata=stored.get("metadata") or {},
    )
