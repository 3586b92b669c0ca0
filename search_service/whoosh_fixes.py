"""Workarounds for bugs in whoosh-reloaded 2.7.5 (frozen upstream), each with a test.

* ``DisjunctionMaxMatcher.score`` returns ``max(a.score(), b.score())`` even
  when its two sub-matchers stand on different documents, so a document can
  receive the score of another one; and its ``replace`` drops the whole
  matcher as soon as *one* side is exhausted (``and`` where ``or`` was meant).
  :class:`DisMax` is ``DisjunctionMax`` with a corrected matcher.
* ``W3PostingsWriter`` cannot inline short posting lists (it calls a method
  that does not exist); :class:`InliningCodec` can.
"""

from __future__ import annotations

from typing import Any

from whoosh import query as wq
from whoosh.codec.whoosh3 import W3Codec, W3PostingsWriter
from whoosh.matching import DisjunctionMaxMatcher, NullMatcher


class FixedDisjunctionMaxMatcher(DisjunctionMaxMatcher):
    def score(self) -> float:
        a, b = self.a, self.b
        if not a.is_active():
            return b.score()
        if not b.is_active():
            return a.score()
        a_id, b_id = a.id(), b.id()
        if a_id < b_id:
            return a.score()
        if b_id < a_id:
            return b.score()
        return max(a.score(), b.score())

    def replace(self, minquality: float = 0) -> Any:
        a_active, b_active = self.a.is_active(), self.b.is_active()
        if not (a_active or b_active):
            return NullMatcher()
        if not a_active:
            return self.b.replace(minquality)
        if not b_active:
            return self.a.replace(minquality)
        # Pruning by quality is not passed down: correctness over a skipped block.
        a, b = self.a.replace(), self.b.replace()
        if a is self.a and b is self.b:
            return self
        return self.__class__(a, b, tiebreak=self.tiebreak)


class DisMax(wq.DisjunctionMax):
    """Scores each document by its best-matching subquery (with the fixed matcher)."""

    def _matcher(self, subs: Any, searcher: Any, context: Any) -> Any:
        reader = searcher.reader()
        return self._tree_matcher(subs, FixedDisjunctionMaxMatcher, searcher, context,
                                  lambda q: q.estimate_size(reader), tiebreak=self.tiebreak)


class _InliningPostingsWriter(W3PostingsWriter):
    """``W3PostingsWriter.finish_postings`` calls ``terminfo.set_inline``, a method
    that does not exist (it is ``set_inlined``), so any ``inlinelimit`` above 1
    crashes at commit. Inlining matters here: most character bigrams occur in
    a few passages, and an inlined term skips a posting block of its own."""

    def finish_postings(self) -> Any:
        terminfo = self._terminfo
        if not self.written() and len(self) < self._inlinelimit:
            terminfo.add_block(self)
            # add_posting keeps only non-empty payloads; formats without one
            # (frequency, existence) must still give one b"" per posting, or a
            # merge reads the inlined list back as empty.
            values = self._values if self._values else [b""] * len(self._ids)
            terminfo.set_inlined(self._ids, self._weights, values)
            self._terminfo = None
            return terminfo
        return super().finish_postings()


class InliningCodec(W3Codec):
    """Whoosh's default codec, with working postings inlining."""

    def __init__(self, blocklimit: int = 128, compression: int = 3, inlinelimit: int = 8) -> None:
        super().__init__(blocklimit=blocklimit, compression=compression, inlinelimit=inlinelimit)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return _InliningPostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                                       compression=self._compression, inlinelimit=self._inlinelimit)
