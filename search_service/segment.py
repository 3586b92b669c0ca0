"""Step 2 of the pipeline: segment normalized text into words with jieba.

Search mode, with positions fit for phrase queries: the precise words get
consecutive positions and the dictionary sub-words of a long word share its
position (jieba's own ``tokenize(mode="search")`` gives sub-words no position
of their own, and its Whoosh ``ChineseAnalyzer`` stores character offsets as
positions).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # jieba 0.42.1 has invalid escape sequences; a fresh byte-compile under
    # -W error would turn them into a SyntaxError. Silence them for jieba only.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=SyntaxWarning)
    import jieba

jieba.setLogLevel(logging.WARNING)

# A token worth indexing has at least one letter, digit or CJK character.
_WORDLIKE = re.compile(r"[^\W_]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Word:
    """A word of the normalized text: [start, end) and its phrase position."""

    text: str
    start: int
    end: int
    pos: int


class Segmenter:
    """A jieba tokenizer with our user dictionary, loaded once per process."""

    def __init__(self, userdict: tuple[str, ...] = (), cache_dir: Path | None = None) -> None:
        self._tokenizer = jieba.Tokenizer()
        cache_dir = cache_dir or Path(os.path.expanduser("~")) / ".cache" / "search-service"
        cache_dir.mkdir(parents=True, exist_ok=True)
        # jieba caches its parsed dictionary (9 MB) in the temp folder unless told.
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
            self._tokenizer.initialize()
            for line in self._userdict:
                parts = line.split()
                if not parts:
                    continue
                freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                tag = parts[2] if len(parts) > 2 else (parts[1] if len(parts) > 1 and not parts[1].isdigit() else None)
                self._tokenizer.add_word(parts[0], freq, tag)
            self._ready = True

    def words(self, text: str) -> list[Word]:
        """Search-mode words of ``text`` with offsets into ``text``; no punctuation."""
        if not self._ready:
            self.initialize()
        freq = self._tokenizer.FREQ
        out: list[Word] = []
        offset = 0
        pos = 0
        for w in self._tokenizer.cut(text, HMM=True):
            start = offset
            offset += len(w)
            if not _WORDLIKE.search(w):
                continue
            n = len(w)
            if n > 2:
                for i in range(n - 1):
                    gram = w[i : i + 2]
                    if freq.get(gram):
                        out.append(Word(gram, start + i, start + i + 2, pos))
            if n > 3:
                for i in range(n - 2):
                    gram = w[i : i + 3]
                    if freq.get(gram):
                        out.append(Word(gram, start + i, start + i + 3, pos))
            stripped = w.strip()
            if stripped != w:
                # jieba keeps a run like "abc " whole; index the word, not its spaces.
                lead = len(w) - len(w.lstrip())
                out.append(Word(stripped, start + lead, start + lead + len(stripped), pos))
            else:
                out.append(Word(w, start, offset, pos))
            pos += 1
        return out


def read_word_list(path: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """Non-empty, non-comment lines of a UTF-8 word list; () when the file is missing."""
    if not path:
        return ()
    p = Path(path)
    if not p.is_file():
        return ()
    lines = p.read_text(encoding="utf-8-sig").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


def fingerprint(lines: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(lines).encode("utf-8")).hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def get_segmenter(userdict: tuple[str, ...] = (), cache_dir: str = "") -> Segmenter:
    """The process-wide segmenter for a user dictionary (loading one costs ~1 s)."""
    return Segmenter(userdict, Path(cache_dir) if cache_dir else None)
