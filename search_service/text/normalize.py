"""Normalizing text, keeping the way back to the original.

Normalization folds width and compatibility forms (NFKC: ＡＢＣ１２３ → abc123,
㎏ → kg, ① → 1), lowercases, and converts traditional to simplified characters
with OpenCC. Both steps can change the length of the text, so alongside the
normalized text we keep, for every normalized character, the span of the
original text it came from. Token offsets are mapped through these spans, so
highlights are always sliced from the original text.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import opencc

from search_service.errors import ConfigError
from search_service.settings import OPENCC_CONFIGS

# OpenCC converts phrase by phrase, and no phrase spans these characters, so
# when a conversion changes the length we realign one such piece at a time.
_PIECE = re.compile(r"[^\s,.;:!?，。；：！？、()（）「」『』《》\[\]【】\"'“”‘’]+")


@dataclass(frozen=True)
class Normalized:
    """A normalized text and, per normalized character, its original span."""

    original: str
    text: str
    starts: Sequence[int]  # a range when normalization kept every position
    ends: Sequence[int]

    def one_to_one(self) -> bool:
        """Whether each normalized character came from the original character at its position."""
        n = len(self.original)
        if len(self.text) != n:
            return False
        if isinstance(self.starts, range) and isinstance(self.ends, range):
            return self.starts == range(n) and self.ends == range(1, n + 1)
        return all(s == i for i, s in enumerate(self.starts)) and all(e == i + 1 for i, e in enumerate(self.ends))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of the normalized characters [start, end)."""
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else len(self.original)
            return pos, pos
        return self.starts[start], self.ends[end - 1]


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if "\ud800" <= ch <= "\udfff":
        # A lone surrogate (possible in JSON input) cannot reach OpenCC's UTF-8.
        return "\ufffd"
    return unicodedata.normalize("NFKC", ch).lower()


# Bounded: every distinct character a client sends lands here, and there are a
# million of them; the scan of the BMP below passes through it too.
@functools.lru_cache(maxsize=4096)
def _is_combining(ch: str) -> bool:
    return unicodedata.combining(ch) != 0 or unicodedata.category(ch) == "Mn"


@functools.lru_cache(maxsize=8)
def _converter(config: str) -> opencc.OpenCC:
    if config not in OPENCC_CONFIGS:
        raise ConfigError(f"unknown OpenCC config {config!r}; choose one of {', '.join(OPENCC_CONFIGS)}")
    return opencc.OpenCC(config)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    """What folding does to the BMP, scanned once per process.

    Most Chinese text is ideographs, ASCII and full-width punctuation. Folding
    leaves the first two alone and maps each of the last to one character;
    those one-to-one changes are a table. ``hard`` finds the
    rest, which need the per-cluster path: characters that fold to several
    (㎏ → kg) or none, combining marks, lone surrogates, and every astral
    character (emoji, rare ideographs, mathematical letters). ``special``
    finds both kinds.
    """
    hard: list[int] = []
    table: dict[str, str] = {}
    for code in range(0x10000):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF or _is_combining(ch):
            hard.append(code)
            continue
        folded = _fold_char(ch)
        if folded == ch:
            continue
        if len(folded) == 1 and not _is_combining(folded):
            table[ch] = folded
        else:
            hard.append(code)
    _fold_char.cache_clear()  # the scan filled them with characters text rarely holds
    _is_combining.cache_clear()
    return _char_class(hard), _char_class(sorted(hard + [ord(c) for c in table])), table


def _char_class(codes: list[int]) -> re.Pattern[str]:
    """A pattern matching one of ``codes`` (BMP code points, ascending) or any astral character."""
    ranges = []
    start = prev = codes[0]
    for code in codes[1:]:
        if code != prev + 1:
            ranges.append((start, prev))
            start = code
        prev = code
    ranges.append((start, prev))
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}\U00010000-\U0010ffff]")


def fold(text: str) -> tuple[str, Sequence[int], Sequence[int]]:
    """NFKC + lowercase, one grapheme-ish cluster (a base and its marks) at a time."""
    hard, special, table = _tables()
    if not hard.search(text):
        # Every change is one character for one: positions stay as they are.
        # (A substitution per changed character beats str.translate, which
        # looks up every character of the text.)
        folded = special.sub(lambda m: table[m.group()], text)
        return folded, range(len(text)), range(1, len(text) + 1)
    specials = [m.start() for m in special.finditer(text)]
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    n = len(text)
    i = 0
    for k in specials:
        if k < i:
            continue  # already consumed as a combining mark of a cluster
        # A plain run up to the special character (its base, if it combines).
        base = k - 1 if k > i and _is_combining(text[k]) else k
        if base > i:
            out.append(text[i:base])
            starts.extend(range(i, base))
            ends.extend(range(i + 1, base + 1))
            i = base
        j = i + 1
        while j < n and _is_combining(text[j]):
            j += 1
        piece = text[i:j]
        if j == i + 1:
            folded = _fold_char(piece)
        else:
            folded = "".join(_fold_char(c) for c in unicodedata.normalize("NFKC", piece).lower())
        out.append(folded)
        starts.extend([i] * len(folded))
        ends.extend([j] * len(folded))
        i = j
    if i < n:
        out.append(text[i:])
        starts.extend(range(i, n))
        ends.extend(range(i + 1, n + 1))
    return "".join(out), starts, ends


def _convert_realigned(text: str, converter: opencc.OpenCC) -> tuple[str, list[int], list[int]]:
    """Convert piece by piece; a piece whose length changed is aligned by diffing
    it against its character-by-character conversion (which keeps the length)."""
    char_converter = _converter("t2s")
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0

    def copy_through(upto: int) -> None:
        for k in range(pos, upto):
            out.append(text[k])
            starts.append(k)
            ends.append(k + 1)

    for m in _PIECE.finditer(text):
        copy_through(m.start())
        pos = m.end()
        piece = m.group()
        conv = converter.convert(piece)
        if len(conv) == len(piece):
            out.append(conv)
            starts.extend(range(m.start(), m.end()))
            ends.extend(range(m.start() + 1, m.end() + 1))
            continue
        base = char_converter.convert(piece)
        matcher = difflib.SequenceMatcher(None, base, conv, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                for k in range(j2 - j1):
                    starts.append(m.start() + i1 + k)
                    ends.append(m.start() + i1 + k + 1)
            elif j2 > j1:
                # Replaced or inserted output: every new character maps to the
                # whole replaced input (or, for a pure insertion, its neighbour).
                lo, hi = (i1, i2) if i2 > i1 else (max(i1 - 1, 0), max(i1, 1))
                hi = min(hi, len(piece))
                starts.extend([m.start() + lo] * (j2 - j1))
                ends.extend([m.start() + hi] * (j2 - j1))
        out.append(conv)
    copy_through(len(text))
    return "".join(out), starts, ends


class Normalizer:
    """Folds and converts text; one instance per OpenCC config, cached per process."""

    def __init__(self, opencc_config: str = "t2s") -> None:
        self.opencc_config = opencc_config
        _converter(opencc_config)  # fail early on a bad config

    def __call__(self, text: str) -> Normalized:
        folded, f_starts, f_ends = fold(text)
        converted = _converter(self.opencc_config).convert(folded)
        if len(converted) == len(folded):
            # The usual case (t2s, tw2s, hk2s never change the length): 1:1.
            return Normalized(text, converted, f_starts, f_ends)
        converted, c_starts, c_ends = _convert_realigned(folded, _converter(self.opencc_config))
        starts = tuple(f_starts[s] for s in c_starts)
        ends = tuple(f_ends[e - 1] for e in c_ends)
        return Normalized(text, converted, starts, ends)


@functools.lru_cache(maxsize=8)
def get_normalizer(opencc_config: str = "t2s") -> Normalizer:
    return Normalizer(opencc_config)


def normalize(text: str, opencc_config: str = "t2s") -> Normalized:
    """Normalize ``text``; see :class:`Normalized`."""
    return get_normalizer(opencc_config)(text)
