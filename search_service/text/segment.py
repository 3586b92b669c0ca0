"""Segmenting normalized text into words with jieba.

Two engines give jieba's segmentation: ``jieba`` (the reference, pure Python)
and ``rjieba`` (jieba-rs, compiled, much faster, an optional extra:
``pip install '.[fast]'``). They agree on most passages and differ mostly
around digits and hyphens (``docs/ranking.md``); the engine is part of the analysis
config stored in each index, so queries are always segmented by the engine
that built the index.

Search mode, with positions fit for phrase queries: the precise words get
consecutive positions and the dictionary sub-words of a long word share its
position (jieba's own ``tokenize(mode="search")`` gives sub-words no position
of their own, and its Whoosh ``ChineseAnalyzer`` stores character offsets as
positions).
"""

from __future__ import annotations

import functools
import logging
import marshal
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from search_service.errors import ConfigError
from search_service.settings import SEGMENTERS


def _import_jieba() -> Any:
    """jieba, imported on first use (an rjieba process never needs it)."""
    # jieba._compat imports setuptools' pkg_resources (most of jieba's import
    # time) only to open its own data files, and opens them directly when
    # that import fails: make it fail, for jieba's import only.
    hidden = "pkg_resources" not in sys.modules
    if hidden:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            # jieba 0.42.1 has invalid escape sequences; a fresh byte-compile under
            # -W error would turn them into a SyntaxError. Silence them for jieba only.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=SyntaxWarning)
            import jieba
    finally:
        if hidden:
            del sys.modules["pkg_resources"]
    jieba.setLogLevel(logging.WARNING)
    return jieba


# A token worth indexing has at least one letter, digit or CJK character.
_WORDLIKE = re.compile(r"[^\W_]", re.UNICODE)


ENGINES = SEGMENTERS


class Segmenter:
    """A jieba tokenizer with our user dictionary, loaded once per process."""

    def __init__(self, userdict: tuple[str, ...] = (), cache_dir: Path | None = None, engine: str = "jieba") -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown segmenter {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine = engine
        self._rjieba: Any = None
        if engine == "rjieba":
            try:
                import rjieba
            except ImportError:
                raise ConfigError(
                    "segmenter 'rjieba' is not installed: pip install rjieba (or reindex with SEARCH_SEGMENTER=jieba)"
                ) from None
            self._rjieba = rjieba.Jieba()
            self._tokenizer: Any = None
        else:
            self._tokenizer = _import_jieba().Tokenizer()
            cache_dir = cache_dir or Path(os.path.expanduser("~")) / ".cache" / "search-service"
            cache_dir.mkdir(parents=True, exist_ok=True)
            # jieba caches its parsed dictionary in the temp folder unless told.
            self._tokenizer.tmp_dir = str(cache_dir)
            self._tokenizer.cache_file = "jieba.cache"
        self._userdict = userdict
        self._lock = threading.Lock()
        self._ready = False

    def initialize(self) -> None:
        """Load the dictionary now rather than on the first call."""
        with self._lock:
            if self._ready:
                return
            if self._rjieba is None:
                self._load_jieba()
            for line in self._userdict:
                parts = line.split()
                if not parts:
                    continue
                freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                tag = parts[2] if len(parts) > 2 else (parts[1] if len(parts) > 1 and not parts[1].isdigit() else None)
                if self._rjieba is not None:
                    self._rjieba.add_word(parts[0], freq, tag)
                else:
                    self._tokenizer.add_word(parts[0], freq, tag)
            self._ready = True

    def _load_jieba(self) -> None:
        tokenizer = self._tokenizer
        jieba = _import_jieba()
        cache = Path(tokenizer.tmp_dir) / tokenizer.cache_file
        if tokenizer.dictionary == jieba.DEFAULT_DICT and cache.is_file():
            # What jieba.Tokenizer.initialize does with a cache of the default
            # dictionary, but marshal.loads of the whole file: about a third of
            # the time of jieba's marshal.load(file), the worst of cold start.
            try:
                tokenizer.FREQ, tokenizer.total = marshal.loads(cache.read_bytes())
                tokenizer.initialized = True
            except (OSError, ValueError, EOFError, TypeError):
                pass  # jieba rebuilds the cache below
        if not tokenizer.initialized:
            tokenizer.initialize()

    def frequency(self, word: str) -> int:
        """``word``'s count in jieba's dictionary (with our user dictionary's words), 0 when
        it is not a word there; rjieba does not expose its counts: 0 for every word."""
        if not self._ready:
            self.initialize()
        if self._tokenizer is None:
            return 0
        found: int = self._tokenizer.FREQ.get(word, 0)
        return found

    def spans(self, text: str) -> list[tuple[str, int, int, int]]:
        """:meth:`words` as (text, start, end, position) tuples: what indexing reads,
        without an object per word."""
        if not self._ready:
            self.initialize()
        if self._rjieba is not None:
            is_word = self._rjieba.has_word
            cut = _like_jieba(self._rjieba.cut(text, True))
        else:
            is_word = self._tokenizer.FREQ.get
            cut = self._tokenizer.cut(text, HMM=True)
        out: list[tuple[str, int, int, int]] = []
        append = out.append
        wordlike = _WORDLIKE.search
        offset = 0
        pos = 0
        for w in cut:
            start = offset
            n = len(w)
            offset += n
            if not wordlike(w):
                continue
            if n > 2:
                for i in range(n - 1):
                    gram = w[i : i + 2]
                    if is_word(gram):
                        append((gram, start + i, start + i + 2, pos))
            if n > 3:
                for i in range(n - 2):
                    gram = w[i : i + 3]
                    if is_word(gram):
                        append((gram, start + i, start + i + 3, pos))
            stripped = w.strip()
            if stripped != w:
                # jieba keeps a run like "abc " whole; index the word, not its spaces.
                lead = n - len(w.lstrip())
                append((stripped, start + lead, start + lead + len(stripped), pos))
            else:
                append((w, start, offset, pos))
            pos += 1
        return out


# jieba-rs keeps a run like 2023-06-04 or 1-2 whole; jieba's HMM step splits
# it into its alphanumeric pieces and the characters between them.
_MIXED_RUN = re.compile(r"[a-zA-Z0-9+#&._%\-]*[^a-zA-Z0-9][a-zA-Z0-9+#&._%\-]*")
_JIEBA_PIECES = re.compile(r"[a-zA-Z0-9]+(?:\.\d+)?%?|.", re.DOTALL)


def _like_jieba(words: list[str]) -> Iterable[str]:
    for w in words:
        if w.isascii() and len(w) > 1 and _MIXED_RUN.fullmatch(w):
            yield from _JIEBA_PIECES.findall(w)
        else:
            yield w


def read_word_list(path: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """Non-empty, non-comment lines of a UTF-8 word list; () when the file is missing."""
    if not path:
        return ()
    p = Path(path)
    if not p.is_file():
        return ()
    lines = p.read_text(encoding="utf-8-sig").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


@functools.lru_cache(maxsize=8)
def get_segmenter(userdict: tuple[str, ...] = (), cache_dir: str = "", engine: str = "jieba") -> Segmenter:
    """The process-wide segmenter for a user dictionary and engine (loading jieba's dictionary is slow)."""
    return Segmenter(userdict, Path(cache_dir) if cache_dir else None, engine)
