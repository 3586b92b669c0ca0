"""What a passage is made of, declared once: its stored attributes, the fields
it is searched by (each with its analysis and weight), its filters, and the
ranking parameters.

The engines build their schemas from these tables, the query planner its
weighted parts, the highlighter and the OpenAPI document their shapes; adding
a field (say, pinyin) is one row here and one analysis step in ``text/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

AnalysisKind = Literal["words", "grams", "pairs"]  # which terms of text/analysis.py a field indexes


@dataclass(frozen=True)
class Field:
    """A searched field: which passage attribute it analyzes, how, and its weight in BM25F."""

    name: str
    source: Literal["text", "heading", "title"]
    analysis: AnalysisKind
    weight: float
    # Positions kept, so phrase queries and ``+word`` can run on it.
    phrase: bool = False
    # Query words are expanded with their synonyms here (the best spelling counts once).
    synonyms: bool = False

    @property
    def rank_only(self) -> bool:
        """Whether only the ranker reads this field's postings (no phrase, constraint or
        Whoosh query is made of grams or pairs): an engine may keep them nowhere else."""
        return self.analysis != "words"


# Order matters: a query's parts are summed in this order (words fields first
# for each word, then gram fields for each gram), which fixes float rounding
# and so the order of ties.
FIELDS: tuple[Field, ...] = (
    Field("body", "text", "words", 1.0, phrase=True, synonyms=True),
    Field("grams", "text", "grams", 0.5),
    Field("heading", "heading", "words", 0.6),
    Field("heading_grams", "heading", "grams", 0.3),
    Field("title", "title", "words", 0.6),
    Field("title_grams", "title", "grams", 0.3),
    # Two query words standing together in the text, as they stand in the query (proximity).
    Field("pairs", "text", "pairs", 0.5),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}
# The passage text's own fields: what phrases, ``+word`` and ``-word`` match.
TEXT_WORDS = "body"
TEXT_GRAMS = "grams"

# A passage's stored attributes, as every engine returns them.
STORED = (
    "passage_id",
    "doc_id",
    "ordinal",
    "start",
    "end",
    "text",
    "normalized",
    "title",
    "heading",
    "section",
    "page",
    "source",
    "metadata",
    "content_hash",
)

# Metadata keys that can be filtered on (jsonl documents' extra keys).
FILTER_KEY = "[A-Za-z0-9_]{1,40}"  # a regex: what the API accepts as a filter key
_FILTER_KEY = re.compile(f"^{FILTER_KEY}$")


def is_filter_key(key: str) -> bool:
    return bool(_FILTER_KEY.match(key))


def filter_term(value: Any) -> str:
    """A metadata value as text (what is normalized, then indexed, for filters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def filterable(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata entries a filter can name: plain values and lists under a filter key."""
    return {k: v for k, v in metadata.items() if is_filter_key(k) and v is not None and not isinstance(v, dict)}


@dataclass(frozen=True)
class Ranking:
    """BM25F parameters and the query planner's weights (measured in the evaluation: ``docs/ranking.md``)."""

    synonym: float = 0.8  # a synonym's weight, relative to the word as written
    common_ratio: float = 0.05  # a part in more than this share of passages only adds to others' scores
    k1: float = 1.2
    b: float = 0.5
    # A passage of a scraped page's related section (other articles' titles and
    # teasers) scores this share of what the same match scores in main text.
    related: float = 0.5

    def weights(self) -> dict[str, float]:
        """The scored fields and their weights."""
        return {f.name: f.weight for f in FIELDS}
