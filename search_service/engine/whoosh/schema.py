"""The Whoosh schema of a passage, made from the field table (:mod:`search_service.fields`).

The tokenizers are thin Whoosh adapters over :mod:`search_service.text.analysis`.
Whoosh pickles a version's schema into its table of contents; ours pickle as a
plain Whoosh tokenizer, and a version is always opened with the schema made
from its manifest's analysis config (:func:`build_schema`): the pickled one is
never read, so no module path of ours is part of the on-disk format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from whoosh import fields as wf
from whoosh import formats
from whoosh.analysis import IDTokenizer, Token, Tokenizer

from search_service.fields import FIELDS, filter_term, is_filter_key
from search_service.text.analysis import Analysis, Term

# Metadata filters are dynamic fields: one per metadata key.
META_PREFIX = "meta_"


class _OwnTokenizer(Tokenizer):
    """Pickled (in a version's table of contents) as Whoosh's own tokenizer: the schema a
    version is read with is made from its manifest, never unpickled."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return IDTokenizer, ()


class _TermTokenizer(_OwnTokenizer):
    """A Whoosh tokenizer over an :class:`Analysis`; subclasses pick the terms."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def terms(self, text: str) -> list[Term]:
        raise NotImplementedError

    def positions(self, text: str) -> dict[str, list[int]]:
        """Each term's positions, in order (what a writer indexes)."""
        positions: dict[str, list[int]] = {}
        for t in self.terms(text):
            positions.setdefault(t.text, []).append(t.pos)
        return positions

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for term in self.terms(value):
            token.text = term.text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = value[term.start : term.end]
            if positions:
                token.pos = start_pos + term.pos
            if chars:
                token.startchar = start_char + term.start
                token.endchar = start_char + term.end
            yield token


class WordTokenizer(_TermTokenizer):
    """jieba search-mode words of the normalized text (the words fields)."""

    def terms(self, text: str) -> list[Term]:
        return self.analysis.words(text)

    def positions(self, text: str) -> dict[str, list[int]]:
        return self.analysis.word_positions(text)


class GramTokenizer(_TermTokenizer):
    """CJK unigrams and bigrams of the normalized text (the gram fields)."""

    def terms(self, text: str) -> list[Term]:
        return self.analysis.grams(text)

    def key_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The grams as keys (:func:`~search_service.text.analysis.gram_keys`), sorted, and their counts."""
        return self.analysis.gram_key_counts(text)


class PairTokenizer(_TermTokenizer):
    """Neighbouring words of the normalized text (the pairs field)."""

    def terms(self, text: str) -> list[Term]:
        return self.analysis.pairs(text)

    def positions(self, text: str) -> dict[str, list[int]]:
        return self.analysis.pair_positions(text)


class ValuesTokenizer(_OwnTokenizer):
    """One exact term per value: a string, or each element of a list (metadata filters)."""

    def __call__(
        self,
        value: Any,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        values = value if isinstance(value, (list, tuple)) else [value]
        for i, v in enumerate(values):
            token.text = filter_term(v)
            token.boost = 1.0
            token.stopped = False
            if positions:
                token.pos = start_pos + i
            yield token


def meta_field_name(key: str) -> str | None:
    return META_PREFIX + key if is_filter_key(key) else None


def build_schema(analysis: Analysis) -> wf.Schema:
    """The schema of a version analyzed by ``analysis``."""
    analyzers = {"words": WordTokenizer(analysis), "grams": GramTokenizer(analysis), "pairs": PairTokenizer(analysis)}
    searched = {
        f.name: wf.TEXT(
            analyzer=analyzers[f.analysis],
            phrase=f.phrase,
            # a field named like its source keeps that attribute stored
            stored=f.name == f.source,
        )
        for f in FIELDS
    }
    schema = wf.Schema(
        passage_id=wf.ID(stored=True, unique=True),
        doc_id=wf.ID(stored=True),
        ordinal=wf.STORED,  # a document's passages are put in order from their stored ordinals
        start=wf.STORED,
        end=wf.STORED,
        text=wf.STORED,  # the passage exactly as in the document
        # Its normalized text when that differs character for character; ""
        # when normalization changed its length (then queries normalize it).
        normalized=wf.STORED,
        section=wf.ID(stored=True),  # main, or related (a scraped page's related articles)
        page=wf.STORED,  # a PDF passage's page
        source=wf.STORED,
        metadata=wf.STORED,
        content_hash=wf.STORED,
        **searched,
    )
    schema.add(META_PREFIX + "*", wf.FieldType(formats.Existence(), ValuesTokenizer()), glob=True)
    return schema


def whoosh_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The Whoosh fields of a passage record: its stored attributes, each searched
    field fed from its source attribute, and one field per filterable metadata key."""
    out = {k: v for k, v in record.items() if k != "filters"}
    for f in FIELDS:
        out[f.name] = record[f.source]
    for key, values in record.get("filters", {}).items():
        out[META_PREFIX + key] = values
    return out
