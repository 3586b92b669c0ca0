"""Query syntax: plain text with a few operators, and never a syntax error.

* ``"…"`` (or “…”) — a phrase: the words must appear in this order;
* ``+word`` — the passage must contain the word;
* ``-word`` — the passage must not contain the word;
* anything else is plain text: an unbalanced quote, a stray colon, ``AND`` or
  brackets are just characters, analyzed like the rest.

The parser only splits the query into clauses; ``search/planner.py`` turns clauses
into a query plan with the index's own analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "phrase"]
Occur = Literal["should", "must", "must_not"]

# 「」 are not here: Chinese questions quote titles and sayings with them
# (「媽祖在馬祖」這個口號…), and that must not turn a question into a strict phrase.
_QUOTES = {'"': '"', "“": "”", "＂": "＂"}


@dataclass(frozen=True)
class Clause:
    """One piece of a query: its text, whether it is a phrase, and how it must occur."""

    text: str
    kind: Kind = "text"
    occur: Occur = "should"


def parse_query(query: str) -> list[Clause]:
    """Split ``query`` into clauses. Total: every string parses."""
    clauses: list[Clause] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        occur: Occur = "should"
        j = i
        if ch in "+-＋－" and i + 1 < n and not query[i + 1].isspace():
            occur = "must" if ch in "+＋" else "must_not"
            j = i + 1
        if query[j] in _QUOTES:
            close = query.find(_QUOTES[query[j]], j + 1)
            if close != -1:
                phrase = query[j + 1 : close]
                if phrase.strip():
                    clauses.append(Clause(phrase, "phrase", occur))
                i = close + 1
                continue
            # An unbalanced quote is just a character; the rest is plain text.
            j += 1
        k = j
        while k < n and not query[k].isspace():
            k += 1
        word = query[j:k]
        if word:
            clauses.append(Clause(word, "text", occur))
        i = k
    return clauses
