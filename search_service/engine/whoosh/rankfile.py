"""A segment's ranking postings: each text field's terms with only what BM25F reads.

The ranker reads a term's document numbers and counts (:mod:`..bm25`). In
Whoosh's files that is a term-table lookup (the probed slots, then the entry:
two reads, see ``codec.term_entry``), then the term's extent, which holds
each block's pickled statistics and, in a phrase field, every posting's
positions too; decoding that in Python made most of a worker's first
queries (``CHANGELOG.md``, issue 20). Tantivy keeps positions in a file of
their own and finds a term's postings from its dictionary entry directly.

This file, one per segment (``<segment>.rnk`` inside the compound file),
holds for every term of every text field one record::

    flags       u1   _TF2 / _TF4: counts as u2 / f4, else u1
    key length  u4   (a token may be a long run of letters)
    n           u4   postings
    key              the field's name, 0xFF, the term's UTF-8 bytes
    ids              n x u4, ascending
    counts

Ids are whole, not gaps: a read is then a view of the bytes plus the
segment's base, where the prefix sum (``cumsum``) that gaps need cost about
as much as a rare term's two reads; the file is a third larger for it.

And a hash table of the keys (CRC-32, linear probing, no wraparound: a
table of ``modulus`` home slots and the overflow after them), each slot the
key's hash and its record's length and offset. A lookup is one read of a
few slots and one read of the record, whose key is compared: two ``pread``
calls and two ``numpy.frombuffer`` a term and segment, every field in one
table, the key and its hash computed once for all segments. The ranker, the
constraints and ``/analyze``'s document frequencies read this file; phrases
read Whoosh's (positions). The gram fields are only here (the writer's
``_rank_only``): no phrase or Whoosh query is made of grams, and a merge reads
them back with :meth:`RankFile.terms`.
"""

from __future__ import annotations

import json
import struct
import zlib
from array import array
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import numpy as np

EXT = ".rnk"
_MAGIC = b"RNK2"
_HEAD = struct.Struct("<BII")  # flags, key length, postings
_SLOT = struct.Struct("<IIQ")  # hash, record length (0: empty), record offset
_SLOTS = np.dtype([("hash", "<u4"), ("length", "<u4"), ("offset", "<u8")])
_FOOTER = struct.Struct("<4sQQQQI")  # magic, slots offset, modulus, slots, fields offset, fields length
_TF2, _TF4 = 2, 4
_PROBE_SLOTS = 4  # the table is at most half full: a probe rarely goes past the first slots
_WINDOW = 1 << 16  # postings encoded at a time


def term_key(field: str, term: str) -> tuple[bytes, int]:
    """A term's key in the file, and the key's hash."""
    key = field.encode("utf-8") + b"\xff" + term.encode("utf-8")
    return key, zlib.crc32(key)


class RankFileWriter:
    """Writes a segment's ranking postings to ``dbfile`` (a Whoosh ``StructFile``):
    fields one after the other, each field's terms in any order, then :meth:`close`."""

    def __init__(self, dbfile: Any) -> None:
        self._file = dbfile
        self._at = 0
        self._fields: list[str] = []
        self._hashes = array("I")
        self._lengths = array("I")
        self._offsets = array("Q")

    def add_terms(
        self, field: str, names: Sequence[bytes], bounds: np.ndarray, docs: np.ndarray, counts: np.ndarray
    ) -> None:
        """Terms ``names[t]`` of ``field``, each with the postings ``bounds[t]:bounds[t + 1]``
        of ``docs`` (ascending within a term) and ``counts``."""
        if field not in self._fields:
            self._fields.append(field)
        prefix = field.encode("utf-8") + b"\xff"
        first = 0
        while first < len(names):
            # A window of terms whose postings are encoded together, about _WINDOW at a time.
            end = max(first + 1, int(np.searchsorted(bounds, bounds[first] + _WINDOW, side="right")) - 1)
            self._window(prefix, names[first:end], bounds[first : end + 1], docs, counts)
            first = end

    def _window(
        self, prefix: bytes, names: Sequence[bytes], bounds: np.ndarray, docs: np.ndarray, counts: np.ndarray
    ) -> None:
        a, b = int(bounds[0]), int(bounds[-1])
        local = (bounds - a).astype(np.int64)
        starts = local[:-1]
        c = np.asarray(counts[a:b])
        top = np.maximum.reduceat(c, starts)
        whole = bool((c == np.round(c)).all()) and bool((c >= 0).all())
        if whole:
            flags = np.where(top < 256, 0, np.where(top < 1 << 16, _TF2, _TF4))
        else:
            flags = np.full(len(starts), _TF4)
        ids4 = np.asarray(docs[a:b]).astype("<u4").tobytes()
        tf1 = np.minimum(c, 0xFF).astype(np.uint8).tobytes() if whole else b""
        tf2 = np.minimum(c, 0xFFFF).astype("<u2").tobytes() if whole else b""
        tf4 = c.astype("<f4").tobytes()
        pack = _HEAD.pack
        crc32 = zlib.crc32
        parts: list[bytes] = []
        at = self._at
        hashes, lengths, offsets = self._hashes, self._lengths, self._offsets
        for name, s, e, f in zip(names, starts.tolist(), local[1:].tolist(), flags.tolist()):
            key = prefix + name
            n = e - s
            tf = tf4[4 * s : 4 * e] if f & _TF4 else (tf2[2 * s : 2 * e] if f & _TF2 else tf1[s:e])
            record = b"".join((pack(f, len(key), n), key, ids4[4 * s : 4 * e], tf))
            parts.append(record)
            hashes.append(crc32(key))
            lengths.append(len(record))
            offsets.append(at)
            at += len(record)
        self._file.write(b"".join(parts))
        self._at = at

    def close(self) -> None:
        """Writes the hash table and the footer, and closes the file."""
        hashes = np.frombuffer(self._hashes, dtype=np.uint32)
        count = len(hashes)
        modulus = 8
        while modulus < 2 * count:
            modulus *= 2
        home = (hashes & (modulus - 1)).astype(np.int64)
        order = np.argsort(home, kind="stable")
        # Linear probing without wraparound, filled in order of home slot: each key
        # takes the first free slot at or after its own, so there is no empty slot
        # between a key's home and where it is.
        ranks = np.arange(count, dtype=np.int64)
        place = np.maximum.accumulate(home[order] - ranks) + ranks
        size = max(modulus, int(place[-1]) + 2) if count else modulus
        table = np.zeros(size, dtype=_SLOTS)
        table["hash"][place] = hashes[order]
        table["length"][place] = np.frombuffer(self._lengths, dtype=np.uint32)[order]
        table["offset"][place] = np.frombuffer(self._offsets, dtype=np.uint64)[order]
        fields = json.dumps(self._fields).encode("utf-8")
        slots_at = self._at
        self._file.write(table.tobytes())
        self._file.write(fields)
        self._file.write(_FOOTER.pack(_MAGIC, slots_at, modulus, size, slots_at + table.nbytes, len(fields)))
        self._file.close()


class RankFile:
    """A segment's ranking postings, read with ``get(position, length)`` (a :class:`~.store.PreadFile`)."""

    def __init__(self, dbfile: Any, length: int) -> None:
        self._get = dbfile.get
        footer = _read(self._get, length - _FOOTER.size, _FOOTER.size)
        magic, self._slots_at, self._modulus, self._size, fields_at, fields_length = _FOOTER.unpack(footer)
        if magic != _MAGIC:
            raise ValueError(f"not a ranking postings file (magic {magic!r})")
        self.fields = frozenset(json.loads(_read(self._get, fields_at, fields_length)))

    def postings(self, key: bytes, keyhash: int, base: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """(document numbers plus ``base``, as int32; counts) of the term ``key``
        (:func:`term_key`), or None if this segment lacks it. Either may be a
        read-only view of the bytes read."""
        get = self._get
        slot = keyhash & (self._modulus - 1)
        while slot < self._size:
            count = min(_PROBE_SLOTS, self._size - slot)
            for slothash, length, offset in _SLOT.iter_unpack(
                _read(get, self._slots_at + slot * _SLOT.size, count * _SLOT.size)
            ):
                if not length:
                    return None  # an empty slot ends the probe
                if slothash == keyhash:
                    record = _read(get, offset, length)
                    flags, keylength, n = _HEAD.unpack_from(record)
                    at = _HEAD.size + keylength
                    if record[_HEAD.size : at] == key:
                        return _decode(record, at, flags, n, base)
            slot += count
        return None

    def terms(self, fields: Collection[str]) -> Iterator[tuple[str, bytes, np.ndarray, np.ndarray]]:
        """Every term of ``fields``: (its field, its UTF-8 bytes, document numbers, counts), in
        no order (what a merge reads); each record is read once, whatever the fields."""
        table = np.frombuffer(_read(self._get, self._slots_at, self._size * _SLOT.size), dtype=_SLOTS)
        used = table[table["length"] > 0]
        for length, offset in zip(used["length"].tolist(), used["offset"].tolist()):
            record = _read(self._get, offset, length)
            flags, keylength, n = _HEAD.unpack_from(record)
            field_bytes, _, term = record[_HEAD.size : _HEAD.size + keylength].partition(b"\xff")
            field = field_bytes.decode("utf-8")
            if field in fields:
                ids, counts = _decode(record, _HEAD.size + keylength, flags, n, 0)
                yield field, term, ids, counts

    def bytes_by_field(self) -> dict[str, int]:
        """Bytes of each field's records, and of the file's table (``""``): reads each record's
        head and key, not its postings."""
        table = np.frombuffer(_read(self._get, self._slots_at, self._size * _SLOT.size), dtype=_SLOTS)
        used = table[table["length"] > 0]
        sizes: dict[str, int] = {"": self._size * _SLOT.size}
        for length, offset in zip(used["length"].tolist(), used["offset"].tolist()):
            _, keylength, _ = _HEAD.unpack(_read(self._get, offset, _HEAD.size))
            field = _read(self._get, offset + _HEAD.size, keylength).partition(b"\xff")[0].decode("utf-8")
            sizes[field] = sizes.get(field, 0) + length
        return sizes


def _decode(record: bytes, at: int, flags: int, n: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.frombuffer(record, "<i4", n, at)  # a passage number is below 2**31
    if base:
        ids = ids + base
    at += 4 * n
    if flags & _TF4:
        counts = np.frombuffer(record, "<f4", n, at)
    elif flags & _TF2:
        counts = np.frombuffer(record, "<u2", n, at)
    else:
        counts = np.frombuffer(record, np.uint8, n, at)
    return ids, counts


def _read(get: Callable[[int, int], bytes], position: int, length: int) -> bytes:
    """``length`` bytes at ``position``; a file shorter than its table says is damaged."""
    data = get(position, length)
    if len(data) != length:
        raise EOFError(f"the ranking postings end {length - len(data)} bytes short of what they list")
    return data


def open_rankfile(segment_reader: Any) -> RankFile | None:
    """The ranking postings of a Whoosh ``SegmentReader``'s segment, or None if it has none."""
    storage = segment_reader._storage
    name = segment_reader._segment.make_filename(EXT)
    if not storage.file_exists(name):
        return None
    return RankFile(storage.open_file(name), storage.file_length(name))
