"""Synonym groups: other spellings of a word that a query also looks for."""

from __future__ import annotations

import re

from search_service.text.analysis import Analysis


class Synonyms:
    """Synonym groups (one comma-separated group a line), matched in normalized form."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = groups
        self._index: dict[str, list[str]] = {}
        for group in groups:
            for word in group:
                self._index.setdefault(word, []).extend(w for w in group if w != word)

    @classmethod
    def parse(cls, lines: list[str], analysis: Analysis) -> Synonyms:
        groups = []
        for line in lines:
            words = [analysis.normalize(w.strip()).text for w in re.split(r"[,，]", line) if w.strip()]
            if len(words) > 1:
                groups.append(words)
        return cls(groups)

    def expand(self, word: str) -> list[str]:
        return self._index.get(word, [])
