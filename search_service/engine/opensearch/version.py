"""An OpenSearch index version: the query plan as one OpenSearch query, ranked by the cluster.

Each scored part becomes a ``term`` query on its field with the field's weight
as boost (a synonym group, a ``dis_max`` of its spellings: the best counts);
BM25 runs per field with the statistics of the whole index across shards
(``dfs_query_then_fetch``), so 1 and 2 shards rank alike. Phrases, ``+word``,
``-word``, documents and metadata filters are ``filter``/``must_not``
clauses: they decide which passages may rank, and do not score. Ties go to
the earlier passage of the build (``seq``), as in the Whoosh engine.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

import search_service.engine.plan as p
from search_service.engine.base import IndexVersion, Ranked, Record
from search_service.engine.opensearch.client import guarded
from search_service.engine.opensearch.schema import field_name, phrase_field_for
from search_service.fields import STORED, Ranking
from search_service.text.analysis import AnalysisConfig, get_analysis

_SOURCE = [*STORED, "filters"]


class OpenSearchVersion(IndexVersion):
    def __init__(self, client: OpenSearch, index: str, name: str, manifest: dict[str, Any],
                 ranking: Ranking, cache_dir: str = "") -> None:
        self.client = client
        self.ranking = ranking
        self.index = index
        self.name = name
        self.manifest = manifest
        self.analysis = get_analysis(AnalysisConfig.from_dict(manifest["analysis"]), cache_dir)
        self.doc_count = int(manifest.get("passage_count") or 0)
        self.empty_fields = frozenset(manifest.get("empty_fields", []))

    @guarded
    def rank(self, plan: p.QueryPlan, limit: int, collapse: bool) -> Ranked:
        if not plan.parts and plan.must is None:
            return Ranked([], [], 0)
        body: dict[str, Any] = {
            "query": query(plan, self.ranking.related),
            "size": limit,
            "sort": [{"_score": "desc"}, {"seq": "asc"}],
            "track_scores": True,
            "track_total_hits": True,
            "_source": _SOURCE,
        }
        if collapse:
            body["collapse"] = {"field": "doc_id"}
            body["aggs"] = {"documents": {"cardinality": {"field": "doc_id", "precision_threshold": 40000}}}
        found = self.client.search(index=self.index, body=body, search_type="dfs_query_then_fetch")
        hits = found["hits"]["hits"]
        total = found["aggregations"]["documents"]["value"] if collapse else found["hits"]["total"]["value"]
        return Ranked([h["_source"] for h in hits], [h["_score"] for h in hits], int(total))

    def stored(self, ref: Any) -> Record:
        record: Record = ref  # rank already fetched each hit's record
        return record

    @guarded
    def passage(self, passage_id: str) -> Record | None:
        found = self.client.search(index=self.index, body={
            "query": {"term": {"passage_id": passage_id}}, "size": 1, "_source": _SOURCE})["hits"]["hits"]
        return found[0]["_source"] if found else None

    @guarded
    def document(self, doc_id: str, start: int = 0, size: int = 100) -> tuple[list[Record], int]:
        found = self.client.search(index=self.index, body={
            "query": {"term": {"doc_id": doc_id}}, "from": start, "size": size, "sort": [{"ordinal": "asc"}],
            "track_total_hits": True, "_source": _SOURCE})["hits"]
        return [h["_source"] for h in found["hits"]], int(found["total"]["value"])

    @guarded
    def doc_frequency(self, field: str, term: str) -> int:
        return int(self.client.count(index=self.index, body={"query": {"term": {field_name(field): term}}})["count"])

    @guarded
    def size_bytes(self) -> int:
        stats = self.client.indices.stats(index=self.index, metric="store")
        return int(stats["_all"]["total"]["store"]["size_in_bytes"])


def query(plan: p.QueryPlan, related: float = 1.0) -> dict[str, Any]:
    """The OpenSearch query of a plan; a passage of the related section scores ``related`` of its match."""
    should = [_part(part) for part in plan.parts]
    filters = [constraint(c) for c in (plan.must, plan.filter) if c is not None]
    bool_query: dict[str, Any] = {"should": should, "filter": filters}
    if plan.must_not is not None:
        bool_query["must_not"] = [constraint(plan.must_not)]
    # Without a required clause, a passage must match at least one part;
    # with one, the required clauses decide and every part only scores.
    bool_query["minimum_should_match"] = 0 if plan.must is not None else 1
    if related == 1.0:
        return {"bool": bool_query}
    return {"function_score": {"query": {"bool": bool_query}, "boost_mode": "multiply",
                               "functions": [{"filter": {"term": {"section": "related"}}, "weight": related}]}}


def _part(part: p.Part) -> dict[str, Any]:
    terms = [{"term": {field_name(f): {"value": t, "boost": w}}} for f, t, w in part]
    return terms[0] if len(terms) == 1 else {"dis_max": {"queries": terms, "tie_breaker": 0.0}}


def constraint(c: p.Constraint) -> dict[str, Any]:
    """The OpenSearch filter of a plan's constraint."""
    if isinstance(c, p.HasTerm):
        return {"term": {field_name(c.field): c.text}}
    if isinstance(c, p.HasPhrase):
        field = phrase_field_for(c.field)
        return {"match_phrase": {field: {"query": " ".join(c.words), "analyzer": "whitespace"}}}
    if isinstance(c, p.InDocument):
        return {"term": {"doc_id": c.doc_id}}
    if isinstance(c, p.HasMetadata):
        return {"term": {f"filters.{c.key}": c.value}}
    if isinstance(c, p.AllOf):
        return {"bool": {"filter": [constraint(i) for i in c.items]}}
    if isinstance(c, p.AnyOf):
        return {"bool": {"should": [constraint(i) for i in c.items], "minimum_should_match": 1}}
    raise TypeError(f"not a constraint: {c!r}")
