"""Workarounds for bugs in whoosh-reloaded 2.7.5 (frozen upstream), each with a test.

* ``W3PostingsWriter`` cannot inline short posting lists (it calls a method
  that does not exist); :class:`InliningCodec` can.
* A compound segment is memory-mapped, and then every file in it is opened as
  ``BytesIO(memoryview)``, which *copies* the file: opening a 50,000-passage
  index read 260 MB into each process (0.2 s, and that much private memory per
  worker). :class:`MappedBufferFile` reads the mapping in place;
  :func:`install` makes Whoosh's compound storage use it.
"""

from __future__ import annotations

import io
from typing import Any

from whoosh.codec.whoosh3 import W3Codec, W3PostingsWriter
from whoosh.filedb import compound
from whoosh.filedb.structfile import BufferFile


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


class _ViewReader(io.RawIOBase):
    """A read-only, seekable file over a memoryview that never copies the view."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), len(self._view) - self._pos))
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = bytes(self._view[self._pos:end])
        self._pos = max(self._pos, end)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._view = memoryview(b"")  # drop the reference to the mapping
        super().close()


class MappedBufferFile(BufferFile):
    """``BufferFile`` reading its buffer in place (Whoosh's wraps a copy in BytesIO)."""

    def __init__(self, buf: Any, name: str | None = None, onclose: Any = None) -> None:
        self._buf = buf
        self._name = name
        # Buffered, so pickle's small reads (and readline) stay cheap.
        self.file = io.BufferedReader(_ViewReader(memoryview(buf)), buffer_size=512)
        self.onclose = onclose
        self.is_real = False
        self.is_closed = False


def install() -> None:
    """Make Whoosh open the files of a memory-mapped compound segment in place."""
    compound.BufferFile = MappedBufferFile  # type: ignore[attr-defined]


install()
