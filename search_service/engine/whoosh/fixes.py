"""Workarounds for bugs in whoosh-reloaded 2.7.5 (frozen upstream), each with a test.

* ``W3PostingsWriter`` cannot inline short posting lists (it calls a method
  that does not exist); :class:`InliningCodec` can.
* A compound segment is memory-mapped, and then every file in it is opened as
  ``BytesIO(memoryview)``, which *copies* the file: opening an index read all
  of it into each process's private memory. :class:`MappedBufferFile` reads the mapping in place;
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


class PositionalReader(io.RawIOBase):
    """A read-only, seekable raw file of ``length`` bytes, each read answered
    by ``_read_at(position, n)``: from a memory view here, with ``pread`` in
    :mod:`.store`."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self._length = length
        self._pos = 0

    def _read_at(self, position: int, n: int) -> bytes:
        raise NotImplementedError

    def pread(self, position: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``position``, without moving the file position."""
        length = max(0, min(length, self._length - position))
        return self._read_at(position, length) if length else b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.pread(self._pos, len(b))
        b[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class _ViewReader(PositionalReader):
    """A file over a memoryview that never copies the view."""

    def __init__(self, view: memoryview) -> None:
        super().__init__(len(view))
        self._view = view

    def _read_at(self, position: int, n: int) -> bytes:
        return bytes(self._view[position:position + n])

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
