"""Documents kept on disk between reading the corpus and writing the index.

A build reads the corpus once, to count the lines documents share (page
chrome can only be told apart after every document has been seen), then
splits and writes each document. Between the two, the documents wait in a
spool: an unlinked temporary file in the index folder, read back by offset
(``os.pread``, so forked writers share it without sharing a file position).
A build then holds a small entry per document, not the corpus's text.
"""

from __future__ import annotations

import marshal
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from search_service.ingest.corpus import Document

# A document is kept as the tuple of its fields, in marshal's format: its metadata comes
# from JSON, so every value is one marshal writes, and it reads back several times
# faster than a pickled dataclass (the spool lives for one run of one Python).
_FIELDS = tuple(f.name for f in fields(Document))
# Each document is preceded by its size: the parts of a long document, put one after
# the other, are read back one at a time (:meth:`Spool.parts`).
_SIZE = struct.Struct("<Q")


class Spool:
    """Documents appended once and read back any number of times, by ``(offset, size)``."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        # In the index folder, not the system's temp folder (None: a dry run, which
        # writes nothing there): that may be a RAM disk, and the index folder has room
        # for the index, which is bigger than the text.
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".spool-")  # noqa: SIM115  (closed by close())
        self._size = 0
        self._pending = False  # bytes put but still in this process's buffer

    @property
    def size(self) -> int:
        """Bytes put so far: where the next document goes."""
        return self._size

    def put(self, doc: Document) -> tuple[int, int]:
        """Append ``doc``; its ``(offset, size)``."""
        data = marshal.dumps(tuple(getattr(doc, name) for name in _FIELDS))
        self._file.write(_SIZE.pack(len(data)))
        self._file.write(data)
        self._pending = True
        where = (self._size, _SIZE.size + len(data))
        self._size += where[1]
        return where

    def flush(self) -> None:
        """Write out what is buffered. Before forking readers: a forked process that
        inherited buffered bytes would write them again, at the shared file position."""
        if self._pending:
            self._file.flush()
            self._pending = False

    def get(self, offset: int, size: int) -> Document:
        """The document appended at ``offset``."""
        return Document(*marshal.loads(self._read(offset, size)[_SIZE.size :]))

    def parts(self, offset: int, size: int) -> Iterator[Document]:
        """The documents appended one after the other from ``offset`` on, ``size`` bytes in
        all (the parts of a long document), read one at a time."""
        end = offset + size
        while offset < end:
            (length,) = _SIZE.unpack(self._read(offset, _SIZE.size))
            yield Document(*marshal.loads(self._read(offset + _SIZE.size, length)))
            offset += _SIZE.size + length

    def _read(self, offset: int, size: int) -> bytes:
        self.flush()
        data = os.pread(self._file.fileno(), size, offset)
        if len(data) != size:
            raise OSError(f"the build's spool file is short: {len(data)} bytes at {offset}, {size} expected")
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
