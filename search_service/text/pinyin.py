"""How words are read aloud (pinyin), and how a Latin run in a query reads as pinyin.

Readings are by word, not by character: a word of the segmentation takes the reading
its phrase has (pypinyin's phrase data, with this project's corrections in
``data/pinyin_overrides.txt`` first: pypinyin reads 还款 as haikuan), so 银行 is yinhang
and 行长 hangzhang. A character no phrase fixes keeps each of its readings, the usual
one first; :attr:`WordReading.others` lists the word's other readings, to be matched
at a lower weight.

A query's Latin run parses as pinyin when it splits into syllables: full (``yibaoka``,
``yi bao ka``, ``YiBaoKa``, ``yī bǎo kǎ``, ``yi1bao3ka3``), its last syllable maybe
half typed (``yibaok``). :func:`syllable_splits` gives every split, bounded.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.constants import PINYIN_DICT

# Other readings kept per word at most (a word of several polyphonic characters no
# phrase fixes would otherwise multiply them).
MAX_OTHER_READINGS = 4
# Splits of one Latin run at most (a run of 256 letters can split thousands of ways).
MAX_SPLITS = 16


@dataclass(frozen=True)
class WordReading:
    """A word's reading, one toneless syllable a character (ü as v), and its others."""

    syllables: tuple[str, ...]
    others: tuple[tuple[str, ...], ...] = ()


def toneless(syllable: str) -> str:
    """A syllable without its tone (mark or digit), lower case, ü written v."""
    decomposed = unicodedata.normalize("NFD", syllable.lower()).replace("u\u0308", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c) and not c.isdigit())


@functools.cache
def syllables() -> frozenset[str]:
    """Every toneless syllable some character reads as (from pypinyin's character data)."""
    found = set()
    for readings in PINYIN_DICT.values():
        for reading in readings.split(","):
            found.add(toneless(reading))
    # Interjections without a vowel (嗯 n, ng; 呣 m; 哼 hng) are left out: as pieces of a
    # typed run they only make false splits (xian as xia n).
    return frozenset(s for s in found if s.isascii() and s.isalpha() and any(v in s for v in "aeiouv"))


@functools.cache
def _prefixes() -> frozenset[str]:
    """Every proper prefix of a syllable: what a half-typed last syllable may be."""
    return frozenset(s[:i] for s in syllables() for i in range(1, len(s)))


@functools.cache
def overrides() -> dict[str, tuple[tuple[str, ...], ...]]:
    """This project's readings of words pypinyin reads wrong (``data/pinyin_overrides.txt``):
    word -> its readings, the usual one first."""
    text = resources.files("search_service").joinpath("data/pinyin_overrides.txt").read_text("utf-8")
    table: dict[str, tuple[tuple[str, ...], ...]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        table[word] = tuple(tuple(r.split()) for r in rest.split("|"))
    return table


@functools.lru_cache(maxsize=65536)
def word_reading(word: str) -> WordReading:
    """How ``word`` (normalized: simplified, lower case) reads; its characters that are
    not hanzi read as themselves."""
    fixed = overrides().get(word)
    if fixed is not None:
        return WordReading(fixed[0], fixed[1:])
    # One item a character: a hanzi's reading, any other character itself.
    # (pypinyin's ``errors`` may return a list, whatever its annotation says.)
    usual_items = lazy_pinyin(word, style=Style.NORMAL, errors=cast(Any, list))
    each_items = pinyin(word, style=Style.NORMAL, heteronym=True, errors=cast(Any, _each_alone))
    if not len(usual_items) == len(each_items) == len(word):
        return WordReading(tuple(word))
    usual = tuple(toneless(s) if _is_hanzi(c) else c for c, s in zip(word, usual_items))
    choices = [
        [u, *(r for r in dict.fromkeys(toneless(x) for x in rs) if r != u)] if _is_hanzi(c) else [u]
        for c, u, rs in zip(word, usual, each_items)
    ]
    others = tuple(itertools.islice((c for c in itertools.product(*choices) if c != usual), MAX_OTHER_READINGS))
    return WordReading(usual, others)


def _each_alone(text: str) -> list[list[str]]:
    return [[c] for c in text]


def _is_hanzi(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff" or "\U00020000" <= c <= "\U0003134f"


def initials(syllables_: tuple[str, ...]) -> str:
    """The first letter of each syllable (yhk for yin hang ka)."""
    return "".join(s[0] for s in syllables_ if s)


_LATIN_RUN = re.compile(r"[a-zA-Zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ1-5\s']+")


def syllable_splits(run: str, half_last: bool = True) -> list[tuple[str, ...]]:
    """Every way ``run`` (letters, maybe with tones, spaces or apostrophes) splits into
    pinyin syllables, fewest syllables first, at most :data:`MAX_SPLITS`; with
    ``half_last``, the last piece may be the start of a syllable. Empty when it does
    not read as pinyin."""
    if not _LATIN_RUN.fullmatch(run):
        return []
    pieces = [toneless(p) for p in re.split(r"[\s'1-5]+", run) if p]
    pieces = [p for p in pieces if p]
    if not pieces:
        return []
    splits: list[tuple[str, ...]] = [()]
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        ways = _split(piece, half_last and last)
        splits = [s + w for s in splits for w in ways][: MAX_SPLITS * 4]
        if not splits:
            return []
    return sorted(splits, key=len)[:MAX_SPLITS]


def _split(letters: str, half_last: bool) -> list[tuple[str, ...]]:
    """The splits of one piece of letters, bounded; memoized over positions."""
    known, starts = syllables(), _prefixes()
    n = len(letters)

    @functools.cache
    def rest(i: int) -> tuple[tuple[str, ...], ...]:
        if i == n:
            return ((),)
        found: list[tuple[str, ...]] = []
        for j in range(min(n, i + 6), i, -1):  # the longest syllable is 6 letters (zhuang)
            head = letters[i:j]
            if head in known or (half_last and j == n and head in starts):
                found.extend((head, *tail) for tail in rest(j))
            if len(found) >= MAX_SPLITS:
                break
        return tuple(found[:MAX_SPLITS])

    return list(rest(0))
