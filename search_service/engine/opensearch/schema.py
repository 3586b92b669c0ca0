"""An OpenSearch index of passages, made from the field table (:mod:`search_service.fields`).

The cluster does no Chinese analysis: our pipeline normalizes and segments,
and each searched field arrives as its terms joined by spaces, indexed by the
whitespace analyzer. So the cluster's terms, term frequencies and field
lengths are the ones the Whoosh engine indexes, and a query's terms (planned
by the same code) need no analysis there. Phrases run on one more field,
``body`` as its precise words in order (sub-words of a long word would
otherwise take positions of their own).

A document is one passage: its stored attributes, ``seq`` (its place in the
build, which breaks ties as the Whoosh engine does), ``filters.<key>``
keywords and the analysed fields; all of it in ``_source``, so that an
incremental build copies unchanged passages without analysing them again.
Hits fetch only the stored attributes.
"""

from __future__ import annotations

from typing import Any

from search_service.fields import FIELDS, FIELDS_BY_NAME, Ranking
from search_service.text.analysis import Analysis, precise

ANALYSED = "f_"  # prefix of the analysed fields


def field_name(field: str) -> str:
    """The cluster's field for a searched field of the table."""
    return ANALYSED + field


def phrase_field(field: str) -> str:
    """The cluster's field for phrases in a searched field with positions: its precise
    segmentation (the search-mode sub-words of the scored field would break positions)."""
    return f"{ANALYSED}{field}_phrase"


def phrase_field_for(field: str) -> str:
    return phrase_field(field) if FIELDS_BY_NAME[field].phrase else field_name(field)


def index_body(shards: int, replicas: int, ranking: Ranking) -> dict[str, Any]:
    """Settings and mappings of a new version's index."""
    properties: dict[str, Any] = {
        "passage_id": {"type": "keyword"},
        "doc_id": {"type": "keyword"},
        "ordinal": {"type": "integer"},
        "seq": {"type": "long"},
        "content_hash": {"type": "keyword", "index": False},
        "start": {"type": "integer", "index": False},
        "end": {"type": "integer", "index": False},
        "text": {"type": "text", "index": False},
        "normalized": {"type": "text", "index": False},
        "title": {"type": "text", "index": False},
        "heading": {"type": "text", "index": False},
        "section": {"type": "keyword"},
        "page": {"type": "integer", "index": False},
        "source": {"type": "keyword", "index": False},
        "metadata": {"type": "object", "enabled": False},
        "filters": {"type": "object", "dynamic": True},
    }
    for f in FIELDS:
        if f.phrase:
            properties[phrase_field(f.name)] = {"type": "text", "analyzer": "whitespace", "norms": False,
                                                "similarity": "passages"}
        properties[field_name(f.name)] = {
            "type": "text", "analyzer": "whitespace", "similarity": "passages",
            # Positions only where phrases could run; the others need frequencies alone.
            "index_options": "positions" if f.phrase else "freqs",
        }
    return {
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": "-1",  # until the build is finished
                "max_result_window": 10000,
                "similarity": {"passages": {"type": "BM25", "k1": ranking.k1, "b": ranking.b}},
            },
        },
        "mappings": {
            "dynamic": "strict",
            "dynamic_templates": [{"filters": {"path_match": "filters.*", "mapping": {"type": "keyword"}}}],
            "properties": properties,
        },
    }


def passage_document(record: dict[str, Any], seq: int, analysis: Analysis) -> dict[str, Any]:
    """The cluster's document of a passage record: stored attributes, analysed fields, filters."""
    doc = {k: v for k, v in record.items() if k != "filters"}
    doc["seq"] = seq
    if record.get("filters"):
        doc["filters"] = record["filters"]
    for f in FIELDS:
        source = record[f.source]
        if f.analysis == "words":
            words = analysis.words(source)
            doc[field_name(f.name)] = _joined(w.text for w in words)
            if f.phrase:
                doc[phrase_field(f.name)] = _joined(w.text for w in precise(words))
        elif f.analysis == "pairs":
            doc[field_name(f.name)] = _joined(t.text for t in analysis.pairs(source))
        else:
            doc[field_name(f.name)] = _joined(analysis.gram_counts(source).elements())
    return doc


def _joined(terms: Any) -> str:
    # A term with white space in it would be two terms to the cluster: leave it out.
    return " ".join(t for t in terms if t and not any(c.isspace() for c in t))
