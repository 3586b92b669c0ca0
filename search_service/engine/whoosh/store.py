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
and much smaller in memory (README, "Engine internals"). POSIX only (``os.pread``).
"""

from __future__ import annotations

import io
import os
import weakref
from pathlib import Path
from typing import Any

from whoosh.filedb import compound
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile, StructFile
from whoosh.index import Index

from search_service.engine.whoosh.fixes import PositionalReader


def open_index(path: Path | str) -> Index:
    """Open the Whoosh index in ``path`` for reading with :class:`PreadFile` files."""
    return FileStorage(str(path), supports_mmap=False).open_index()


class _Descriptor:
    """A file descriptor, closed when nothing reads from it any more.

    Segment files stay open as long as a reader of the version exists (a
    request in flight on a version just replaced keeps it), and are closed
    quietly then, as a mapping would be unmapped."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        weakref.finalize(self, os.close, fd)


class _PreadRaw(PositionalReader):
    """A file over ``length`` bytes at ``offset`` of a descriptor."""

    def __init__(self, descriptor: _Descriptor, offset: int, length: int) -> None:
        super().__init__(length)
        self.descriptor, self.offset = descriptor, offset

    def _read_at(self, position: int, n: int) -> bytes:
        return os.pread(self.descriptor.fd, n, self.offset + position)


class PreadFile(BufferFile):
    """One file of a compound segment: ``get`` is one ``pread``; sequential
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

    def subset(self, offset: int, length: int, name: str | None = None) -> "PreadFile":
        raw = self._raw
        return PreadFile(raw.descriptor, raw.offset + offset, length, name=name or self._name)


def _open_file(self: compound.CompoundStorage, name: str, *args: Any, **kwargs: Any) -> Any:
    """``CompoundStorage.open_file`` of a segment opened without mapping: a :class:`PreadFile`."""
    descriptor = self.__dict__.get("_descriptor")
    if descriptor is None and self._source is None and getattr(self._file, "is_real", False):
        # Own a duplicate of the descriptor and close Whoosh's file object, as
        # Whoosh does once it has mapped a segment.
        descriptor = self._descriptor = _Descriptor(os.dup(self._file.fileno()))
        self._file.close()
        self._file = None
    if descriptor is None:
        return _whoosh_open_file(self, name, *args, **kwargs)
    if self.is_closed:
        raise compound.StorageError("Storage was closed")
    offset, length = self.range(name)
    return PreadFile(descriptor, offset, length, name=name)


def _close(self: compound.CompoundStorage) -> None:
    _whoosh_close(self)
    self._descriptor = None  # closed with the last file read from it


_whoosh_open_file = compound.CompoundStorage.open_file
_whoosh_close = compound.CompoundStorage.close
compound.CompoundStorage.open_file = _open_file  # type: ignore[method-assign]
compound.CompoundStorage.close = _close  # type: ignore[method-assign]
