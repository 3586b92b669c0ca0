"""Workarounds for bugs in whoosh-reloaded 2.7.5 (frozen upstream), each with a test.

* ``W3PostingsWriter`` cannot inline short posting lists (it calls a method
  that does not exist); :class:`InliningCodec` can.
* A compound segment is memory-mapped, and then every file in it is opened as
  ``BytesIO(memoryview)``, which *copies* the file: opening an index read all
  of it into each process's private memory. Worked around by never mapping:
  every index is opened on :class:`~.store.PreadStorage`, whose files Whoosh's
  compound storage opens in place through their ``subset``.

Both are hooks Whoosh offers (a codec, a storage class): nothing of Whoosh's is
patched at import.
"""

from __future__ import annotations

from typing import Any

from whoosh.codec.whoosh3 import W3Codec, W3PostingsWriter


class _InliningPostingsWriter(W3PostingsWriter):
    """``W3PostingsWriter.finish_postings`` calls ``terminfo.set_inline``, a method
    that does not exist (it is ``set_inlined``), so any ``inlinelimit`` above 1
    crashes at commit. Inlining matters here: most character bigrams occur in
    a few passages, and an inlined term skips a posting block of its own."""

    _terminfo: Any  # Whoosh's, set by start_postings

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
        return _InliningPostingsWriter(
            dbfile,
            blocklimit=self._blocklimit,
            byteids=byteids,
            compression=self._compression,
            inlinelimit=self._inlinelimit,
        )
