"""A passage as every engine receives it: its stored attributes and its filters."""

from __future__ import annotations

from typing import Any

from search_service.fields import filter_term, filterable
from search_service.ingest.corpus import Document
from search_service.ingest.passages import Passage
from search_service.text.analysis import Analysis


def passage_record(p: Passage, doc: Document, content_hash: str, analysis: Analysis) -> dict[str, Any]:
    """The record of one passage (the attributes of :data:`search_service.fields.STORED`,
    and ``filters``: each filterable metadata key's indexed values)."""
    record: dict[str, Any] = {
        "passage_id": p.passage_id,
        "doc_id": p.doc_id,
        "ordinal": p.ordinal,
        "start": p.start,
        "end": p.end,
        "text": p.text,
        "title": doc.title,
        "heading": p.heading,
        "section": p.section,
        "page": p.page,
        "source": doc.source,
        "metadata": doc.metadata,
        "content_hash": content_hash,
    }
    # Highlighting finds query terms in the normalized passage. Store it, so
    # that queries need not normalize every hit again (the analysis reuses
    # this normalization: it costs the build nothing).
    norm = analysis.normalize(p.text)
    if norm.text != p.text:
        record["normalized"] = norm.text if norm.one_to_one() else ""
    # Filter values are normalized like text (script, width, case), and so is
    # a filter's value at query time: tags:違規 finds tags 违规.
    filters = {}
    for key, value in filterable(doc.metadata).items():
        filters[key] = (
            [filter_value(v, analysis) for v in value] if isinstance(value, list) else filter_value(value, analysis)
        )
    if filters:
        record["filters"] = filters
    return record


def filter_value(value: Any, analysis: Analysis) -> str:
    """The indexed form of a metadata value: what a filter's value, normalized alike, must equal."""
    return analysis.normalize(filter_term(value)).text
