"""What searching returns: hits, passages, documents, results (the API's JSON shapes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Hit:
    rank: int
    score: float
    passage_id: str
    doc_id: str
    title: str
    heading: str
    text: str
    highlight: str  # the text's snippet, HTML-escaped, matches in <mark>
    matches: list[list[int]]  # [start, end) of each match in ``text``
    title_highlight: str  # the whole title, escaped, matches in <mark>
    title_matches: list[list[int]]  # offsets in ``title``
    heading_highlight: str
    heading_matches: list[list[int]]
    section: str  # main, or related: from a page's related articles and questions
    page: int | None  # a PDF's page where the passage starts
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
    section: str
    page: int | None
    source: str
    metadata: dict[str, Any]


@dataclass
class DocumentRecord:
    """A document and its passages in order."""

    doc_id: str
    title: str
    source: str
    metadata: dict[str, Any]
    total_passages: int  # all of the document's
    start: int  # the first passage shown, from 0
    size: int  # passages asked for
    passages: list[PassageRecord]


@dataclass
class SearchResult:
    query: str
    # Passages that match the query and the filters (with collapse=doc: documents);
    # a passage matches when one of the query's words or character grams is in its
    # text, title or heading, and every phrase, +word and -word holds.
    total: int
    page: int
    size: int
    pages: int  # the pages that can be asked for: of the first max_page_depth hits
    took_ms: float
    hits: list[Hit]
    version: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON body; what ``dataclasses.asdict`` gives, without deep-copying every hit."""
        out = dict(vars(self))
        out["hits"] = [dict(vars(h)) for h in self.hits]
        return out


def stored_passage(stored: dict[str, Any]) -> PassageRecord:
    return PassageRecord(
        passage_id=stored["passage_id"],
        doc_id=stored["doc_id"],
        ordinal=stored.get("ordinal", 0),
        title=stored.get("title", ""),
        heading=stored.get("heading", ""),
        text=stored["text"],
        start=stored.get("start", 0),
        end=stored.get("end", 0),
        section=stored.get("section") or "main",
        page=stored.get("page"),
        source=stored.get("source", ""),
        metadata=stored.get("metadata") or {},
    )
