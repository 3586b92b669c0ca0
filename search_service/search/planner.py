"""From a query to a :class:`~search_service.engine.plan.QueryPlan`.

Each plain clause is analyzed exactly like the indexed text and becomes a
disjunction of word terms (precision) and character bigrams (recall) over the
searched fields of :mod:`search_service.fields`, each with its weight; BM25F
scores the sum, so a passage that matches more of a question ranks higher and
a passage missing one word is still found. Phrases, ``+word`` and ``-word``
also become constraints, which decide which passages may rank but do not score.
"""

from __future__ import annotations

from collections.abc import Callable

from search_service.engine.plan import (
    AllOf,
    AnyOf,
    Constraint,
    HasMetadata,
    HasPhrase,
    HasTerm,
    InDocument,
    Part,
    QueryPlan,
    all_of,
)
from search_service.errors import InvalidRequest
from search_service.fields import FIELDS, TEXT_GRAMS, TEXT_WORDS, Ranking
from search_service.text.analysis import CJK_RUN, PAIR_JOIN, Analysis, Term, bigrams, precise
from search_service.text.synonyms import Synonyms
from search_service.text.syntax import parse_query


class Planner:
    """Plans queries for one index version: its analysis, synonyms and non-empty fields."""

    def __init__(
        self,
        analysis: Analysis,
        synonyms: Synonyms,
        ranking: Ranking,
        empty_fields: frozenset[str] = frozenset(),
        filter_keys: tuple[str, ...] | None = None,
        max_terms: int = 32,
    ) -> None:
        self.analysis = analysis
        self.synonyms = synonyms
        self.ranking = ranking
        # Fields no passage has: their parts would only cost time.
        self.empty_fields = empty_fields
        # The metadata keys documents have (None: a version that did not record them).
        self.filter_keys = filter_keys
        self.max_terms = max_terms

    def plan(self, text: str, docs: tuple[str, ...] = (), filters: tuple[tuple[str, str], ...] = ()) -> QueryPlan:
        """The scored parts of ``text``, its constraints and the normalized terms to highlight."""
        parts: list[Part] = []
        must: list[Constraint] = []
        must_not: list[Constraint] = []
        marks: set[str] = set()
        clauses = [(c, self.analysis.words(c.text), self.analysis.query_grams(c.text)) for c in parse_query(text)]
        kept = self._informative([w for c, words, _ in clauses if c.occur != "must_not" for w in words])
        for clause, words, grams in clauses:
            if not words and not grams:  # nothing to search for (punctuation, stopwords)
                continue
            constraint: Constraint | None = None
            if clause.kind == "phrase" or clause.occur != "should":  # most clauses only score
                constraint = (_phrase if clause.kind == "phrase" else _contains)(words, grams)
            if clause.occur == "must_not":
                if constraint is not None:
                    must_not.append(constraint)
                continue
            if constraint is not None:
                must.append(constraint)
            pairs = self.analysis.pairs(clause.text)
            if kept is not None:
                words, grams, pairs = _within(kept, words, grams, pairs)
            marks.update(_marks(clause.kind, words, grams))
            parts.extend(self._scored(words, grams, pairs))
        return QueryPlan(
            parts,
            AllOf(tuple(must)) if must else None,
            AnyOf(tuple(must_not)) if must_not else None,
            self._filter(docs, filters),
            marks,
        )

    def _informative(self, words: list[Term]) -> set[str] | None:
        """The ``max_terms`` words of a long query that say the most, or None when it has no
        more than that: a pasted paragraph would otherwise cost ten times a question, in
        postings read and scored and in marks highlighted. Rarer in the language says more
        (jieba's dictionary frequency; a word it does not know counts as rarest); then the
        longer, then the earlier."""
        distinct = list(dict.fromkeys(w.text for w in words))
        if len(distinct) <= self.max_terms:
            return None
        frequency = self.analysis.word_frequency
        ranked = sorted(range(len(distinct)), key=lambda i: (frequency(distinct[i]), -len(distinct[i]), i))
        return {distinct[i] for i in ranked[: self.max_terms]}

    def _scored(self, words: list[Term], grams: list[str], pairs: list[Term]) -> list[Part]:
        """The weighted scoring parts of one clause, in the order of the field table."""
        parts: list[Part] = []
        for t in sorted({w.text for w in words}):
            for f in FIELDS:
                if f.analysis != "words" or f.weight <= 0 or f.name in self.empty_fields:
                    continue
                alternatives = self.synonyms.expand(t) if f.synonyms else []
                if alternatives:
                    # A synonym is another spelling of the same word, not more evidence:
                    # the best of the alternatives counts, once.
                    weight = f.weight * self.ranking.synonym
                    parts.append(((f.name, t, f.weight), *((f.name, s, weight) for s in alternatives)))
                else:
                    parts.append(((f.name, t, f.weight),))
        gram_fields = [f for f in FIELDS if f.analysis == "grams" and f.weight > 0 and f.name not in self.empty_fields]
        parts.extend(((f.name, g, f.weight),) for g in sorted(set(grams)) for f in gram_fields)
        pair_fields = [f for f in FIELDS if f.analysis == "pairs" and f.weight > 0 and f.name not in self.empty_fields]
        parts.extend(((f.name, p, f.weight),) for p in sorted({t.text for t in pairs}) for f in pair_fields)
        return parts

    def _filter(self, docs: tuple[str, ...], filters: tuple[tuple[str, str], ...]) -> Constraint | None:
        """Passages of one of ``docs`` (when given) whose metadata matches one value of every
        filtered key; values normalized as the index normalized them. Raises InvalidRequest
        for a key no document has (a typo would otherwise find nothing, silently)."""
        parts: list[Constraint] = []
        if docs:
            parts.append(AnyOf(tuple(InDocument(d) for d in docs)))
        by_key: dict[str, list[str]] = {}
        for key, value in filters:
            by_key.setdefault(key, []).append(self.analysis.normalize(value).text)
        unknown = sorted(k for k in by_key if self.filter_keys is not None and k not in self.filter_keys)
        if unknown:
            known = ", ".join(self.filter_keys or ()) or "none: no document has metadata"
            raise InvalidRequest(
                f"no document has the filter key {unknown[0]!r}; the keys are: {known}", code="bad_filter"
            )
        for key, values in by_key.items():
            parts.append(AnyOf(tuple(HasMetadata(key, v) for v in values)))
        return all_of(parts)

    def describe(self, plan: QueryPlan, doc_frequency: Callable[[str, str], int], doc_count: int) -> str:
        """The plan as operators read it on /analyze: each part with its weight, selective or common."""
        out = []
        for alternatives in plan.parts:
            df = max(doc_frequency(f, t) for f, t, _ in alternatives)
            text = " | ".join(f"{f}:{t}^{w:g}" for f, t, w in alternatives)
            if len(alternatives) > 1:
                text = f"best({text})"
            if not df:
                out.append(f"{text} [absent]")
            else:
                kind = "common" if df > self.ranking.common_ratio * doc_count else "selective"
                out.append(f"{text} [{kind}, df={df}]")
        if plan.must is not None:
            out.append(f"must: {plan.must}")
        if plan.must_not is not None:
            out.append(f"must not: {plan.must_not}")
        return "; ".join(out)


def _marks(kind: str, words: list[Term], grams: list[str]) -> list[str]:
    """What a clause highlights: its words as written (search-mode sub-words
    included, which are words of the query too), a phrase as a whole, and
    character grams only for a clause that has no word (stopwords only, like
    的). Bigrams still rank a passage, but marking 保卡 inside 社保卡 for the
    query 医保卡 would show a match that is not one. A phrase is its words in
    order, space-separated: the highlighter allows punctuation and spaces between
    them, as the index's positions skip them (密码、重置 matches "密码重置")."""
    if kind == "phrase":
        exact = precise(words)
        return [" ".join(w.text for w in exact)] if exact else grams
    if words:
        return [t.text for t in words]
    return grams


def _all_grams(grams: list[str]) -> Constraint | None:
    return AllOf(tuple(HasTerm(TEXT_GRAMS, g) for g in grams)) if grams else None


def _contains(words: list[Term], grams: list[str]) -> Constraint | None:
    """Passages containing the clause: each word, as a word or as its bigrams."""
    exact = precise(words)
    if not exact:
        return _all_grams(grams)
    parts: list[Constraint] = []
    for w in exact:
        alternatives: list[Constraint] = [HasTerm(TEXT_WORDS, w.text)]
        if len(w.text) > 1 and CJK_RUN.fullmatch(w.text):
            alternatives.append(AllOf(tuple(HasTerm(TEXT_GRAMS, g) for g in bigrams(w.text))))
        parts.append(AnyOf(tuple(alternatives)))
    return AllOf(tuple(parts))


def _phrase(words: list[Term], grams: list[str]) -> Constraint | None:
    exact = precise(words)
    if len(exact) > 1:
        return HasPhrase(TEXT_WORDS, tuple(w.text for w in exact))
    if exact:
        return HasTerm(TEXT_WORDS, exact[0].text)
    return _all_grams(grams)


def _within(
    kept: set[str], words: list[Term], grams: list[str], pairs: list[Term]
) -> tuple[list[Term], list[str], list[Term]]:
    """A clause's words, grams and pairs that belong to the ``kept`` words: a gram inside one
    of them, a pair of two of them."""
    words = [w for w in words if w.text in kept]
    inside = {w.text[i : i + 2] for w in words for i in range(max(1, len(w.text) - 1))}
    grams = [g for g in grams if g in inside]
    pairs = [p for p in pairs if all(half in kept for half in p.text.split(PAIR_JOIN))]
    return words, grams, pairs
