"""A query plan: what the search layer hands an engine, in no engine's terms.

The planner (``search/planner.py``) turns a query into weighted scoring parts
and boolean constraints; an engine either ranks the plan itself (a cluster
translates it into its query language) or hands it to :mod:`.bm25`, which
ranks over posting arrays the engine reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

Alternative = tuple[str, str, float]  # (field, term, weight)
# One scored part: a term in a field, or several spellings of one word of
# which the best counts (a synonym group).
Part = tuple[Alternative, ...]


@dataclass(frozen=True)
class HasTerm:
    """Passages whose ``field`` holds ``text``."""

    field: str
    text: str

    def __str__(self) -> str:
        return f"{self.field}:{self.text}"


@dataclass(frozen=True)
class HasPhrase:
    """Passages whose ``field`` holds ``words`` at consecutive positions."""

    field: str
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f'{self.field}:"{" ".join(self.words)}"'


@dataclass(frozen=True)
class InDocument:
    """Passages of the document ``doc_id``."""

    doc_id: str

    def __str__(self) -> str:
        return f"doc_id:{self.doc_id}"


@dataclass(frozen=True)
class HasMetadata:
    """Passages whose document's metadata ``key`` is (or contains) ``value``."""

    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}:{self.value}"


@dataclass(frozen=True)
class AllOf:
    items: tuple[Constraint, ...]

    def __str__(self) -> str:
        return "(" + " AND ".join(map(str, self.items)) + ")"


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Constraint, ...]

    def __str__(self) -> str:
        return "(" + " OR ".join(map(str, self.items)) + ")"


Constraint = HasTerm | HasPhrase | InDocument | HasMetadata | AllOf | AnyOf


def all_of(items: list[Constraint]) -> Constraint | None:
    """The conjunction of ``items``; None when there are none, the item itself when one."""
    if not items:
        return None
    return items[0] if len(items) == 1 else AllOf(tuple(items))


class QueryPlan(NamedTuple):
    """What a query asks for.

    ``parts`` are summed into each passage's score. A passage must match
    ``must`` and ``filter`` (phrases and ``+word``; document ids and metadata)
    and must not match ``must_not`` (``-word``); these constrain, they do not
    score. ``marks`` are the normalized terms the highlighter marks.
    """

    parts: list[Part]
    must: Constraint | None
    must_not: Constraint | None
    filter: Constraint | None
    marks: set[str]
