"""How a served index version's files are read: with ``pread``, not memory-mapped.

Whoosh maps each compound segment file into memory. Every page a query
touches then stays mapped in the worker, and the kernel maps neighbouring
pages at each fault: after a while most of the index counted in each
worker's resident memory, although it is file cache shared by every worker.
Elasticsearch's default store reads postings and stored fields with
positional reads for the same reason (Lucene's ``NIOFSDirectory``).

Here every file of a segment is read with ``os.pread`` on one descriptor: no
shared file position (threads can share it), no mapping, one system call per
read (a term's postings are one read, see ``codec.term_arrays``). The pages
live in the kernel's file cache, once for all workers, and count in no
worker's resident memory. That includes the term table: a lookup there is
two small reads (``codec.term_entry``), a little slower than mapped for a worker's first
queries (warm queries do not look terms up: the ranker keeps their postings),
and much smaller in memory (``docs/performance.md``, "Memory per worker"). POSIX only (``os.pread``).
"""

from __future__ import annotations

import io
import os
import weakref
from pathlib import Path
from typing import Any

from whoosh.fields import Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile, StructFile
from whoosh.index import FileIndex


def open_index(path: Path | str, schema: Schema) -> FileIndex:
    """Open the Whoosh index in ``path``, its files read with :class:`PreadFile`,
    analyzed as ``schema`` says (its pickled schema is not read)."""
    return FileIndex(PreadStorage(str(path)), schema=schema)


def create_index(path: Path | str, schema: Schema) -> FileIndex:
    """A new, empty Whoosh index in the folder ``path``, read as :func:`open_index` reads."""
    return FileIndex.create(PreadStorage(str(path)), schema, "MAIN")


class PreadStorage(FileStorage):
    """A folder whose files open as :class:`PreadFile`. Whoosh's compound segment
    storage then opens each file of a segment with the file's ``subset`` (what it does
    with any file that has one when it does not map): a ``pread`` file too."""

    def __init__(self, path: str) -> None:
        super().__init__(path, supports_mmap=False)

    def open_file(self, name: str, **kwargs: Any) -> PreadFile:
        fd = os.open(self._fpath(name), os.O_RDONLY)
        return PreadFile(_Descriptor(fd), 0, os.fstat(fd).st_size, name=name)


class _Descriptor:
    """A file descriptor, closed when nothing reads from it any more.

    Segment files stay open as long as a reader of the version exists (a
    request in flight on a version just replaced keeps it), and are closed
    quietly then, as a mapping would be unmapped."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        weakref.finalize(self, os.close, fd)


class _PreadRaw(io.RawIOBase):
    """A read-only, seekable raw file over ``length`` bytes at ``offset`` of a descriptor,
    each read one ``pread`` (no shared file position)."""

    def __init__(self, descriptor: _Descriptor, offset: int, length: int) -> None:
        super().__init__()
        self.descriptor, self.offset = descriptor, offset
        self._length = length
        self._pos = 0

    def pread(self, position: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``position``, without moving the file position."""
        length = max(0, min(length, self._length - position))
        return os.pread(self.descriptor.fd, length, self.offset + position) if length else b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.pread(self._pos, len(b))
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class PreadFile(BufferFile):
    """A file, or one file of a compound segment: ``get`` is one ``pread``; sequential
    reads (pickles, varints) go through a small buffer. ``get_array`` is
    Whoosh's ``BufferFile``'s, over ``get``."""

    def __init__(self, descriptor: _Descriptor, offset: int, length: int, name: str | None = None) -> None:
        self._raw = _PreadRaw(descriptor, offset, length)
        StructFile.__init__(self, io.BufferedReader(self._raw, buffer_size=512), name=name)
        self.is_real = False  # no fileno: arrays are read from bytes

    def get(self, position: int, length: int) -> bytes:
        # The raw file's pread, inlined: a worker's first queries make about 90 of these
        # each (term table slots and entries, postings), and three calls deep they
        # cost as much again as the system call.
        raw = self._raw
        length = min(length, raw._length - position)
        return os.pread(raw.descriptor.fd, length, raw.offset + position) if length > 0 else b""

    def subset(self, offset: int, length: int, name: str | None = None) -> PreadFile:
        raw = self._raw
        return PreadFile(raw.descriptor, raw.offset + offset, length, name=name or self._name)
