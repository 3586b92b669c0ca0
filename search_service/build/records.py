"""A passage as every engine receives it: its stored attributes and its filters."""

from __future__ import annotations

from typing import Any

from search_service.build.corpus import Document
from search_service.build.passages import Passage
from search_service.fields import filter_term, is_filter_key
from search_service.text.analysis import Analysis


def passage_record(p: Passage, doc: Document, content_hash: str, analysis: Analysis) -> dict[str, Any]:
    """The record of one passage (the attributes of :data:`search_service.fields.STORED`,
    and ``filters``: each filterable metadata key's indexed values)."""
    record: dict[str, Any] = dict(
        passage_id=p.passage_id,
        doc_id=p.doc_id,
        ordinal=p.ordinal,
        start=p.start,
        end=p.end,
        text=p.text,
        title=doc.title,
        heading=p.heading,
        source=doc.source,
        metadata=doc.metadata,
        content_hash=content_hash,
    )
    # Highlighting finds query terms in the normalized passage. Store it, so
    # that queries need not normalize every hit again (the analysis reuses
    # this normalization: it costs the build nothing).
    norm = analysis.normalize(p.text)
    if norm.text != p.text:
        record["normalized"] = norm.text if norm.one_to_one() else ""
    filters = {}
    for key, value in doc.metadata.items():
        if is_filter_key(key) and value is not None and not isinstance(value, dict):
            filters[key] = [filter_term(v) for v in value] if isinstance(value, list) else filter_term(value)
    if filters:
        record["filters"] = filters
    return record
