"""Text analysis: the terms a text produces, identical for indexing and querying.

Both analyses run over the *normalized* text (see :mod:`.normalize`) and report
every term's offsets in the *original* text:

* words: jieba search-mode words, stopwords dropped, positions fit for phrase
  queries (precision);
* grams: CJK character unigrams and bigrams, so a word the dictionary splits
  differently, or a one-character query, still matches (recall).

An :class:`AnalysisConfig` is stored in every index version's manifest, so
queries are analyzed exactly like the index they run against. This module reads
no settings: its callers pass the configuration in (reindex makes it from the
settings, a served version reads it from its manifest).
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Generic, TypeVar

import numpy as np

from search_service.text.normalize import Normalized, get_normalizer
from search_service.text.segment import Segmenter, get_segmenter

# CJK ideographs (unified, extension A, compatibility, and the supplementary planes),
# as code point ranges: what a gram is made of.
CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
CJK_RUN = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in CJK_RANGES) + "]+")

# A gram as one integer, so that an indexer can count a text's grams with NumPy
# instead of a Python object per gram: a unigram is its code point, a bigram
# (first + 1) << 21 | second (code points are below 2 ** 21).
_GRAM_SHIFT = 21
_GRAM_MASK = (1 << _GRAM_SHIFT) - 1


def gram_keys(normalized: str) -> np.ndarray:
    """Every gram of :meth:`Analysis.grams` of a normalized text, as keys (unigrams, then bigrams)."""
    points = np.frombuffer(normalized.encode("utf-32-le"), dtype="<u4")
    cjk = np.zeros(len(points), dtype=bool)
    for low, high in CJK_RANGES:
        cjk |= (points >= low) & (points <= high)
    pairs = cjk[:-1] & cjk[1:]
    first = points[:-1][pairs].astype(np.int64)
    return np.concatenate([points[cjk].astype(np.int64), ((first + 1) << _GRAM_SHIFT) | points[1:][pairs]])


def gram_text(key: int) -> str:
    """The gram a key of :func:`gram_keys` stands for."""
    if key <= _GRAM_MASK:
        return chr(key)
    return chr((key >> _GRAM_SHIFT) - 1) + chr(key & _GRAM_MASK)


def bigrams(run: str) -> list[str]:
    """The character bigrams of a run of text, in order."""
    return list(map(operator.add, run, run[1:]))


def bundled_stopwords() -> tuple[str, ...]:
    text = resources.files("search_service").joinpath("data/stopwords.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


T = TypeVar("T")

SHORT_TEXT = 64
SHORT_CACHE_SIZE = 4096


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything that decides which terms a text produces. Stored in the index."""

    opencc_config: str = "t2s"
    segmenter: str = "jieba"
    userdict: tuple[str, ...] = ()
    stopwords: tuple[str, ...] = field(default_factory=bundled_stopwords)

    @classmethod
    def create(
        cls, opencc_config: str, segmenter: str, userdict: Iterable[str], stopwords: Iterable[str] | None = None
    ) -> AnalysisConfig:
        """A config from word lists as written (``stopwords`` None: the bundled list).
        Dictionary words and stopwords are matched against normalized text, so they are
        normalized too: a traditional entry then works, and so does a full-width one."""
        normalizer = get_normalizer(opencc_config)
        entries = []
        for line in userdict:
            word, _, rest = line.partition(" ")
            entries.append(" ".join([normalizer(word).text, *rest.split()]))
        words = bundled_stopwords() if stopwords is None else stopwords
        return cls(
            opencc_config=opencc_config,
            segmenter=segmenter,
            userdict=tuple(entries),
            stopwords=tuple(sorted({normalizer(w).text for w in words})),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisConfig:
        """The config a manifest records (``dataclasses.asdict`` of one)."""
        return cls(
            opencc_config=data["opencc_config"],
            segmenter=data["segmenter"],
            userdict=tuple(data["userdict"]),
            stopwords=tuple(data["stopwords"]),
        )


class _Recent(Generic[T]):
    """The last few results of a function of a text, newest first. Server threads share
    an analysis: the list is replaced, never changed in place."""

    SIZE = 4

    def __init__(self) -> None:
        self._items: list[tuple[str, T]] = []

    def get(self, text: str, compute: Callable[[str], T]) -> T:
        items = self._items
        for key, value in items:
            if key == text:
                return value
        value = compute(text)
        self._items = [(text, value), *items[: self.SIZE - 1]]
        return value


@dataclass(frozen=True, slots=True)
class Term:
    """An index term and where it stands in the original text."""

    text: str
    start: int
    end: int
    pos: int


class Analysis:
    """Normalizer + segmenter + stopwords for one config; shared per process.
    ``cache_dir``: where jieba keeps its dictionary cache ("" for jieba's default)."""

    def __init__(self, config: AnalysisConfig, cache_dir: str = "") -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.normalizer = get_normalizer(config.opencc_config)
        self.stopwords = frozenset(config.stopwords)
        # Indexing analyzes a passage's text for several fields (words, grams, pairs) with
        # its heading and title between them: the last few results are kept.
        self._normalized: _Recent[Normalized] = _Recent()
        self._segmented: _Recent[list[tuple[str, int, int, int]]] = _Recent()
        # Titles and headings repeat on every passage of a document: remember
        # the terms of short texts rather than segmenting them again.
        self._short: dict[tuple[str, str], Any] = {}  # (kind, text) -> what that kind computes

    @functools.cached_property
    def segmenter(self) -> Segmenter:
        # Resolved once, on first use (the dictionary itself loads on the first
        # segmentation); not on every call, which is the indexing and query path.
        return get_segmenter(self.config.userdict, self.cache_dir, self.config.segmenter)

    def initialize(self) -> None:
        """Load what the first text would otherwise pay for: the segmenter's
        dictionary and the normalizer's tables (a server does this once, in the
        master, before its workers fork)."""
        self.segmenter.initialize()
        self.normalizer("")

    def normalize(self, text: str) -> Normalized:
        return self._normalized.get(text, self.normalizer)

    def _remember(self, kind: str, text: str, compute: Callable[[str], T]) -> T:
        if len(text) > SHORT_TEXT:
            return compute(text)
        key = (kind, text)
        terms: T | None = self._short.get(key)
        if terms is None:
            if len(self._short) >= SHORT_CACHE_SIZE:
                self._short.clear()
            terms = self._short[key] = compute(text)
        return terms

    def words(self, text: str, *, keep_stopwords: bool = False) -> list[Term]:
        if keep_stopwords:
            return self._words(text, keep_stopwords=True)
        return self._remember("w", text, self._words)

    def grams(self, text: str) -> list[Term]:
        return self._remember("g", text, self._grams)

    def gram_counts(self, text: str) -> Counter[str]:
        """How often each gram of :meth:`grams` occurs: what a frequency field
        indexes, counted without building a term (and its offsets) per gram."""
        return self._remember("gc", text, self._gram_counts)

    def gram_key_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`gram_counts` as two arrays: the grams' keys (:func:`gram_keys`), sorted, and their counts."""
        return self._remember("gk", text, self._gram_key_counts)

    def _gram_key_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        keys, counts = np.unique(gram_keys(self.normalize(text).text), return_counts=True)
        return keys, counts.astype(np.int32)

    def _gram_counts(self, text: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for run in CJK_RUN.findall(self.normalize(text).text):
            counts.update(run)
            counts.update(bigrams(run))
        return counts

    def _spans(self, normalized: str) -> list[tuple[str, int, int, int]]:
        """The segmenter's spans of a normalized text."""
        return self._segmented.get(normalized, self.segmenter.spans)

    def _words(self, text: str, *, keep_stopwords: bool = False) -> list[Term]:
        norm = self.normalize(text)
        out = []
        for word, start, end, pos in self._spans(norm.text):
            if not keep_stopwords and word in self.stopwords:
                continue
            out.append(Term(word, *norm.span(start, end), pos))
        return out

    def word_positions(self, text: str) -> dict[str, list[int]]:
        """The positions of each term of :meth:`words`, in order: what a phrase field
        indexes, without offsets (an index needs none) or an object per word."""
        return self._remember("wp", text, self._word_positions)

    def _word_positions(self, text: str) -> dict[str, list[int]]:
        stopwords = self.stopwords
        positions: dict[str, list[int]] = {}
        for word, _, _, pos in self._spans(self.normalize(text).text):
            if word in stopwords:
                continue
            found = positions.get(word)
            if found is None:
                positions[word] = [pos]
            else:
                found.append(pos)
        return positions

    def _grams(self, text: str) -> list[Term]:
        norm = self.normalize(text)
        t = norm.text
        out = []
        pos = 0
        for m in CJK_RUN.finditer(t):
            a, b = m.span()
            for i in range(a, b):
                out.append(Term(t[i], norm.starts[i], norm.ends[i], pos))
                if i + 1 < b:
                    out.append(Term(t[i : i + 2], norm.starts[i], norm.ends[i + 1], pos))
                pos += 1
        return out

    def pairs(self, text: str) -> list[Term]:
        """Each two words that stand together, in order: neighbours of the precise segmentation
        with at most one stopword between them and no punctuation (the pairs field, which
        ranks a passage holding the query's words together above one holding them apart).
        A pair's offsets run from its first word's start to its second word's end."""
        norm = self.normalize(text)
        return [Term(pair, *norm.span(start, end), pos) for pair, start, end, pos in self._pair_spans(norm.text)]

    def pair_positions(self, text: str) -> dict[str, list[int]]:
        """The positions of each pair of :meth:`pairs` (its first word's), in order: what the
        pairs field indexes, without offsets."""
        return self._remember("pp", text, self._pair_positions)

    def _pair_positions(self, text: str) -> dict[str, list[int]]:
        positions: dict[str, list[int]] = {}
        for pair, _, _, pos in self._pair_spans(self.normalize(text).text):
            positions.setdefault(pair, []).append(pos)
        return positions

    def _pair_spans(self, normalized: str) -> list[tuple[str, int, int, int]]:
        """(pair, start, end, position) in the normalized text."""
        stopwords = self.stopwords
        longest: dict[int, tuple[str, int, int, int]] = {}  # the precise segmentation: per position, its longest word
        for span in self._spans(normalized):
            if span[0] in stopwords:
                continue
            found = longest.get(span[3])
            if found is None or len(span[0]) > len(found[0]):
                longest[span[3]] = span
        words = [longest[p] for p in sorted(longest)]
        out = []
        for a, b in itertools.pairwise(words):
            if b[3] - a[3] <= PAIR_GAP and not _PAIR_BREAK.search(normalized, a[2], b[1]):
                out.append((a[0] + PAIR_JOIN + b[0], a[1], b[2], a[3]))
        return out

    def word_frequency(self, word: str) -> int:
        """How common a (normalized) word is in the language: the segmenter's dictionary
        count, 0 for a word it does not know."""
        return self.segmenter.frequency(word)

    def query_grams(self, text: str) -> list[str]:
        """Bigrams of each CJK run of a query clause; a one-character run stays a unigram."""
        out: list[str] = []
        for run in CJK_RUN.findall(self.normalize(text).text):
            out.extend(bigrams(run) if len(run) > 1 else [run])
        return out

    def trace(self, text: str) -> dict[str, Any]:
        """What an operator needs to debug analysis: every stage with offsets."""
        norm = self.normalize(text)
        return {
            "original": text,
            "normalized": norm.text,
            "opencc_config": self.config.opencc_config,
            "words": [_term_json(t, text) for t in self.words(text)],
            "stopwords": [
                _term_json(t, text) for t in self.words(text, keep_stopwords=True) if t.text in self.stopwords
            ],
            "grams": [_term_json(t, text) for t in self.grams(text)],
            "pairs": [_term_json(t, text) for t in self.pairs(text)],
            "readings": _readings_json(self.words(text)),
        }


# A pair's two words, as one term: jieba never puts this character inside a word, and
# no engine's analyzer takes it for white space.
PAIR_JOIN = "→"
PAIR_GAP = 2  # positions from a pair's first word to its second: one stopword may stand between
# Punctuation (or a symbol) between two words: they belong to different phrases.
_PAIR_BREAK = re.compile(r"[^\w\s]")


def precise(words: list[Term]) -> list[Term]:
    """The precise segmentation among search-mode ``words``: per position, the
    longest word (its dictionary sub-words share its position)."""
    best: dict[int, Term] = {}
    for w in words:
        if w.pos not in best or len(w.text) > len(best[w.pos].text):
            best[w.pos] = w
    return [best[p] for p in sorted(best)]


def _readings_json(words: list[Term]) -> list[dict[str, Any]]:
    """How each distinct word reads (pinyin): its usual reading and its others."""
    from search_service.text.pinyin import word_reading  # pypinyin's tables: loaded when asked

    readings = (word_reading(w) for w in dict.fromkeys(t.text for t in words))
    return [
        {"word": w, "pinyin": " ".join(r.syllables), "others": [" ".join(o) for o in r.others]}
        for w, r in zip(dict.fromkeys(t.text for t in words), readings)
    ]


def _term_json(t: Term, original: str) -> dict[str, Any]:
    return {"term": t.text, "start": t.start, "end": t.end, "position": t.pos, "original": original[t.start : t.end]}


@functools.lru_cache(maxsize=8)
def get_analysis(config: AnalysisConfig, cache_dir: str = "") -> Analysis:
    """The process's :class:`Analysis` of ``config`` (its dictionary loads once)."""
    return Analysis(config, cache_dir)
