"""Writing a segment's files a block (or a table) at a time: the bulk codec, its
postings and term-table writers, and Whoosh's term infos and field lengths as
arrays. The files are byte for byte those Whoosh's own writers make
(``tests/engine/whoosh/test_writer.py``).
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import struct
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import W3FieldWriter
from whoosh.filedb import filetables
from whoosh.util.numeric import byte_to_length, length_to_byte

from search_service.engine.whoosh.codec import ArrayCodec, ArrayPostingsWriter


class _BulkPostingsWriter(ArrayPostingsWriter):
    def add_postings(
        self, docs: Sequence[int], weights: Sequence[float], values: Sequence[bytes] | None, lengths: Sequence[int]
    ) -> None:
        """What ``add_posting`` does once per posting, a block at a time.

        Only for a term's first call (the block buffer is empty): blocks are
        full (``blocklimit``) except the last, which ``finish_postings``
        writes or inlines, exactly as the one-by-one path leaves them.
        ``values`` None: each is the count (Whoosh's ``Frequency``), ``pack_uint(weight)``.
        """
        limit = self._blocklimit
        for start in range(0, len(docs), limit):
            if start:
                self._write_block()
            end = start + limit
            self._ids = array("I", docs[start:end])
            self._weights = array("f", weights[start:end])
            self._values = None if values is None else [v for v in values[start:end] if v]
            self._maxweight = max(0, *self._weights)
            block_lengths = [n for n in lengths[start:end] if n]
            self._minlength = min(block_lengths) if block_lengths else None
            self._maxlength = max(block_lengths, default=0)


class _BulkFieldWriter(W3FieldWriter):
    """Whoosh's field writer, whose term table writes its hash tables a bucket at a time."""

    def __init__(self, codec: Any, storage: Any, segment: Any) -> None:
        super().__init__(codec, storage, segment)
        self._tindex._write_hashes = functools.partial(_write_hashes, self._tindex)


def _write_hashes(tindex: Any) -> None:
    """``HashWriter._write_hashes``: the same 256 open-addressing tables (linear probing,
    in insertion order), each written in one piece instead of a write per slot."""
    dbfile = tindex.dbfile
    for entries in tindex.buckets:
        numslots = 2 * len(entries)
        tindex.directory.append((dbfile.tell(), numslots))
        hashes = [0] * numslots
        positions = [0] * numslots  # 0: an empty slot (no key starts at 0, the header does)
        for h, position in entries:
            slot = (h >> 8) % numslots
            while positions[slot]:
                slot = (slot + 1) % numslots
            hashes[slot] = h
            positions[slot] = position
        table = np.empty(numslots, dtype=_HASH_SLOT)
        table["hash"] = hashes
        table["position"] = positions
        dbfile.write(table.tobytes())


_HASH_SLOT = np.dtype([("hash", ">u4"), ("position", ">i8")])  # filetables._pointer
assert _HASH_SLOT.itemsize == filetables._pointer.size


class BulkCodec(ArrayCodec):
    """The service's codec (:mod:`codec`), plus block-at-a-time postings and term tables."""

    def field_writer(self, storage: Any, segment: Any) -> Any:
        return _BulkFieldWriter(self, storage, segment)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return _BulkPostingsWriter(
            dbfile, blocklimit=self._blocklimit, byteids=byteids, compression=0, inlinelimit=self._inlinelimit
        )


TERMINFO = struct.Struct("!BfIBBfII")  # W3TermInfo._struct
# The same, as a NumPy record (packed, big-endian), to compute every term's at once.
TERMINFO_ARRAY = np.dtype(
    [
        ("inlined", "u1"),
        ("weight", ">f4"),
        ("count", ">u4"),
        ("min_length", "u1"),
        ("max_length", "u1"),
        ("max_weight", ">f4"),
        ("first", ">u4"),
        ("last", ">u4"),
    ]
)
assert TERMINFO_ARRAY.itemsize == TERMINFO.size
NO_LENGTH = np.iinfo(np.int32).max
_LENGTH_BYTES = np.array([byte_to_length(b) for b in range(256)], dtype=np.int64)


def length_bytes(lengths: np.ndarray) -> np.ndarray:
    """Whoosh's ``length_to_byte`` of each length (the smallest byte whose length is not below it)."""
    return np.minimum(np.searchsorted(_LENGTH_BYTES, lengths, side="left"), 255)


def inlined_terminfo(
    docs: Sequence[int], weights: Sequence[float], values: Sequence[bytes], lengths: Sequence[int]
) -> bytes:
    """``W3TermInfo.to_bytes()`` of a term whose postings are inlined, as
    ``start_postings`` + ``add_posting``s + ``finish_postings`` would make it."""
    stored_weights = tuple(array("f", weights))
    present = [n for n in lengths if n]
    head = TERMINFO.pack(
        1,  # inlined
        sum(stored_weights),
        len(docs),
        length_to_byte(min(present)) if present else 0,
        length_to_byte(max(present, default=0)),
        max(0, *weights),
        docs[0],
        docs[-1],
    )
    kept = tuple(v for v in values if v) or (b"",) * len(docs)
    return head + pickle.dumps((tuple(docs), stored_weights, kept), 2)


def add_terms(tindex: Any, items: list[tuple[bytes, bytes]]) -> None:
    """``OrderedHashWriter.add`` for each (key, value) of ``items``, in one write."""
    if not items:
        return
    if tindex.hashfn is not filetables.md5_hash or items[0][0] <= tindex.lastkey:
        for key, value in items:  # not the layout this shortcut knows: Whoosh's own way
            tindex.add(key, value)
        return
    dbfile = tindex.dbfile
    buckets = tindex.buckets
    index = tindex.index
    pack = _KEY_VALUE_LENGTHS.pack
    pos = dbfile.tell()
    parts: list[bytes] = []
    for key, value in items:
        index.append(pos)
        # md5_hash(key): the digest's last four bytes, read as an integer
        h = int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[12:], "big")
        buckets[h & 255].append((h, pos))
        head = pack(len(key), len(value))
        parts += (head, key, value)
        pos += len(head) + len(key) + len(value)
    dbfile.write(b"".join(parts))
    tindex.lastkey = items[-1][0]


_KEY_VALUE_LENGTHS = struct.Struct("!ii")  # filetables._lengths


class StoredLengths:
    """Field lengths for a field's postings: the ones this writer recorded, and
    for documents merged in from another segment, what Whoosh stored for them
    (read back as Whoosh's own writer reads every one)."""

    def __init__(self, known: dict[int, int], name: str, per_document_reader: Callable[[], Any]) -> None:
        self._known = known
        self._name = name
        self._per_document_reader = per_document_reader

    def get(self, docnum: int, default: int = 0) -> int:
        n = self._known.get(docnum)
        if n is None:
            n = self._per_document_reader().doc_field_length(docnum, self._name) or default
        return n
