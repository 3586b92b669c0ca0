"""How posting lists are laid out on disk.

Whoosh's codec stores each block of 128 postings as a zlib-compressed pickle
of tuples of Python ints, floats and bytes (pickle protocol 2, so even its
arrays become tuples): reading a long list back was mostly ``pickle.loads``
and zlib, paid by the first query to meet a common term (``CHANGELOG.md``, "Array
posting blocks").

:class:`ArrayCodec` keeps Whoosh's framing — per block its length and the
pickled statistics Whoosh uses to skip blocks — and stores the block's data
as plain little-endian arrays, as small as each block allows::

    flags        1 byte    which of the forms below the block uses
    ids          n x u4    document numbers, ascending; or, when every gap
                           fits, the first as u4 and n - 1 gaps as u2
    weights      absent when every weight is 1.0; n x u1 when every weight
                 is a whole number below 256 (term counts); else n x f4
    values       absent when each is ``pack_uint(weight)`` (Whoosh's
                 ``Frequency`` format: the count again); fixed-size formats:
                 n x size bytes; variable-size formats (positions):
                 (n + 1) x u4 offsets, then the bytes

so :func:`term_arrays` reads a term's postings with one or two
``numpy.frombuffer`` calls per block, reading (and so touching the pages of)
the ids and weights only, and Whoosh's own matcher machinery (phrases,
``docs_for_query``, merges) reads the same blocks back as arrays of Python numbers.
Short lists are still inlined into the term table, as by
:class:`~.fixes.InliningCodec`. The index is larger than with Whoosh's
compressed pickles; its pages live in the page cache, shared by every worker.

Stored fields (what a hit shows) are plain pickles, not Whoosh's
zlib-compressed ones (:class:`StoredFieldsColumn`): reading a hit's fields
was half zlib, to save about 640 bytes a passage.
"""

from __future__ import annotations

import io
import pickle
import struct
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher, W3PerDocReader, W3PerDocWriter, W3TermInfo
from whoosh.columns import VarBytesColumn
from whoosh.filedb import filetables
from whoosh.system import emptybytes, pack_uint
from whoosh.util.numeric import length_to_byte

from search_service.engine.whoosh.fixes import InliningCodec, _InliningPostingsWriter

# Postings per block: larger blocks mean fewer block headers to read while
# scoring; Whoosh still skips whole blocks in phrase and boolean matching.
BLOCK_LIMIT = 512
# Block flags (see the module docstring).
_WEIGHTS = 1  # weights stored
_GAPS = 2  # ids as the first id and u2 gaps
_BYTE_WEIGHTS = 4  # weights as u1
_COUNT_VALUES = 8  # values not stored: each is pack_uint(weight)
_BLOCK_LENGTH = struct.Struct("!i")  # Whoosh's block length prefix
_FIRST_ID = struct.Struct("<I")
_INFO_BYTES = 64  # more than a block's pickled statistics ever take


class ArrayPostingsWriter(_InliningPostingsWriter):
    """Whoosh's postings writer with array blocks (see the module docstring)."""

    def _write_block(self, last: bool = False) -> None:
        if self._byteids:  # term vectors: Whoosh's own layout (not used by this service)
            super()._write_block(last)
            return
        if not self._blockcount:
            self._postfile.write(WHOOSH3_HEADER_MAGIC)
        self._terminfo.add_block(self)
        data = _encode_block(self._ids, self._weights, self._values, self._format.fixed_value_size())
        # The same statistics tuple as Whoosh's blocks (compression 0), so its
        # matcher can skip blocks by last id, weight and lengths.
        info = (
            len(self._ids),
            self._ids[-1],
            self._maxweight,
            0,
            length_to_byte(self._minlength),
            length_to_byte(self._maxlength),
        )
        infobytes = pickle.dumps(info, 2)
        length = len(infobytes) + len(data)
        self._postfile.write_int(-length if last else length)
        self._postfile.write(infobytes)
        self._postfile.write(data)
        self._blockcount += 1
        self._new_block()


def _encode_block(
    ids: Sequence[int], weights: Sequence[float], values: Sequence[bytes] | None, value_size: int | None
) -> bytes:
    """A block's data: flags, ids, weights, values (see the module docstring); ``values``
    None when each is ``pack_uint`` of its (whole) weight."""
    n = len(ids)
    id_array = np.asarray(ids, dtype=np.int64)
    gaps = np.diff(id_array)
    flags = 0
    if n > 1 and int(gaps.max()) < 1 << 16:
        flags |= _GAPS
        parts = [_FIRST_ID.pack(int(id_array[0])), gaps.astype("<u2").tobytes()]
    else:
        parts = [id_array.astype("<u4").tobytes()]
    weight_array = np.asarray(weights, dtype=np.float32)
    counts = None
    if bool((weight_array != 1.0).any()):
        flags |= _WEIGHTS
        if bool(((weight_array == np.round(weight_array)) & (weight_array >= 0) & (weight_array < 256)).all()):
            flags |= _BYTE_WEIGHTS
            counts = weight_array.astype(np.uint8)
            parts.append(counts.tobytes())
        else:
            parts.append(weight_array.astype("<f4").tobytes())
    else:
        counts = np.ones(n, dtype=np.uint8)
    if value_size is not None and value_size < 0:
        value_size = None
    if values is None:  # each value is the count (Whoosh's Frequency format), said by the writer
        if counts is not None:
            values = ()
            flags |= _COUNT_VALUES
        else:
            values = [pack_uint(int(w)) for w in weights]
    if value_size == 0 or flags & _COUNT_VALUES:
        pass
    elif counts is not None and len(values) == n and all(v == pack_uint(c) for v, c in zip(values, counts.tolist())):
        flags |= _COUNT_VALUES
    elif value_size is None:
        values = values if values else [emptybytes] * n
        parts.append(np.fromiter(accumulate((len(v) for v in values), initial=0), dtype="<u4", count=n + 1).tobytes())
        parts.extend(values)
    else:
        parts.extend(values)
    return b"".join([bytes((flags,)), *parts])


class FieldBlocks:
    """:func:`_encode_block` of many terms' one-block posting lists at once: ``docs`` and
    ``counts`` hold every term's postings, term after term, ``bounds[t]:bounds[t + 1]``
    being term ``t``'s; ``values`` None for a ``Frequency`` field (each value is the
    count), else each posting's bytes (a variable-size format: positions).

    The gaps, byte counts and value offsets of the whole field are encoded with a few
    NumPy operations; a term's data is then slices of them. :meth:`data` is None for a
    term whose block needs another form (a gap of 2 ** 16 or more, a count of 256 or
    more, values that might each be the count).
    """

    def __init__(
        self, docs: np.ndarray, counts: np.ndarray, bounds: np.ndarray, values: np.ndarray | None = None
    ) -> None:
        # In the ids' own width (int32 in a segment): a flush's peak memory holds these arrays.
        gaps = np.diff(docs, prepend=docs.dtype.type(0))
        starts = bounds[:-1]
        gaps[starts] = 0  # a term's first id is stored whole, not as a gap from the last term's
        self._gaps = np.minimum(gaps, 0xFFFF).astype("<u2").tobytes()
        self._counts = np.minimum(counts, 0xFF).astype(np.uint8).tobytes()
        self._first = docs[starts].tolist() if len(starts) else []
        fits = (
            (np.maximum.reduceat(gaps, starts) < 1 << 16) & (np.maximum.reduceat(counts, starts) < 256)
            if len(starts)
            else np.zeros(0, dtype=bool)
        )
        ones = np.maximum.reduceat(counts, starts) == 1 if len(starts) else fits
        self._values = values
        self._ends: np.ndarray | None = None
        stored = _COUNT_VALUES
        if values is not None:
            stored = 0
            lengths = np.fromiter(map(len, values), dtype=np.int32, count=len(values))
            if len(starts):
                # _encode_block drops a term's values when every one is pack_uint of its
                # count (4 bytes): a term with a value of another length never is.
                fits &= np.maximum.reduceat(lengths != 4, starts)
            # Value offsets, field-wide, in as few bytes as they fit (a flush's peak memory;
            # no copy to prepend the 0).
            total = int(lengths.sum(dtype=np.int64))
            self._ends = np.zeros(len(lengths) + 1, dtype=np.int32 if total < 1 << 31 else np.int64)
            np.cumsum(lengths, out=self._ends[1:])
        self._flags = np.where(fits, _GAPS | stored | np.where(ones, 0, _WEIGHTS | _BYTE_WEIGHTS), -1).tolist()

    def data(self, term: int, start: int, end: int) -> bytes | None:
        """The block data of ``term``, whose postings are ``start:end`` (at least two)."""
        flags = self._flags[term]
        if flags < 0 or end - start < 2:
            return None
        weights = self._counts[start:end] if flags & _WEIGHTS else emptybytes
        head = (bytes((flags,)), _FIRST_ID.pack(self._first[term]), self._gaps[2 * start + 2 : 2 * end], weights)
        if self._values is None:
            return b"".join(head)
        assert self._ends is not None
        offsets = (self._ends[start : end + 1] - self._ends[start]).astype("<u4").tobytes()
        return b"".join((*head, offsets, *self._values[start:end].tolist()))


def _block_layout(flags: int, n: int) -> tuple[int, int]:
    """(bytes of ids, bytes of weights) of a block's data after its flags byte."""
    ids = 4 + 2 * (n - 1) if flags & _GAPS else 4 * n
    weights = (n if flags & _BYTE_WEIGHTS else 4 * n) if flags & _WEIGHTS else 0
    return ids, weights


def decode_block(data: bytes, n: int, value_size: int | None) -> tuple[np.ndarray, np.ndarray, Sequence[Any]]:
    """Ids, weights and values of a block's data (what :func:`_encode_block` made of them)."""
    flags = data[0]
    id_bytes, weight_bytes = _block_layout(flags, n)
    weights_at, values_at = 1 + id_bytes, 1 + id_bytes + weight_bytes
    ids = _decode_ids(flags, data, 1, n)
    weights = _decode_weights(flags, data, weights_at, n)
    values: Sequence[Any]
    if value_size == 0:
        values = (None,) * n
    elif flags & _COUNT_VALUES:
        values = [pack_uint(c) for c in weights.astype(np.int64).tolist()]
    elif value_size is None or value_size < 0:
        body = values_at + 4 * (n + 1)
        offsets = np.frombuffer(data, "<u4", n + 1, values_at).tolist()
        values = [data[body + offsets[i] : body + offsets[i + 1]] for i in range(n)]
    else:
        values = [data[values_at + i * value_size : values_at + (i + 1) * value_size] for i in range(n)]
    return ids, weights, values


def _decode_ids(flags: int, data: bytes, at: int, n: int) -> np.ndarray:
    if flags & _GAPS:
        ids = np.empty(n, dtype=np.uint32)
        ids[0] = _FIRST_ID.unpack_from(data, at)[0]
        ids[1:] = np.frombuffer(data, "<u2", n - 1, at + 4)
        return np.cumsum(ids, dtype=np.uint32)
    return np.frombuffer(data, "<u4", n, at)


def _decode_weights(flags: int, data: bytes, at: int, n: int) -> np.ndarray:
    if not flags & _WEIGHTS:
        return np.ones(n, dtype=np.float32)
    if flags & _BYTE_WEIGHTS:
        return np.frombuffer(data, np.uint8, n, at).astype(np.float32)
    return np.frombuffer(data, "<f4", n, at)


class ArrayLeafMatcher(W3LeafMatcher):
    """Whoosh's block matcher over array blocks (for phrases, boolean queries and merges)."""

    def _read_data(self) -> None:
        self._data = self._postfile.get(self._dataoffset, self._nextoffset - self._dataoffset)

    def _read_ids(self) -> None:
        if self._data is None:
            self._read_data()
        self._ids = _to_array("I", _decode_ids(self._data[0], self._data, 1, self._blocklength))

    def _read_weights(self) -> None:
        if self._data is None:
            self._read_data()
        flags = self._data[0]
        id_bytes, _ = _block_layout(flags, self._blocklength)
        self._weights = _to_array("f", _decode_weights(flags, self._data, 1 + id_bytes, self._blocklength))

    def _read_values(self) -> None:
        if self._data is None:
            self._read_data()
        self._values = decode_block(self._data, self._blocklength, self._fixedsize)[2]


def _to_array(typecode: str, values: np.ndarray) -> array[Any]:
    """A numpy array as an :mod:`array` of Python numbers, which Whoosh's code expects."""
    out = array(typecode)
    out.frombytes(values.astype(np.uint32 if typecode == "I" else np.float32).tobytes())
    return out


def term_arrays(terms: Any, fieldname: str, tbytes: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(document numbers, weights) of a term in one segment, or None if it lacks the term.

    The arrays may be read-only views of the file's bytes (uint32, float32).

    ``terms`` is the segment's terms reader (``SegmentReader._terms``) of an
    :class:`ArrayCodec` segment. Reads the term table entry (:func:`term_entry`)
    and then the term's blocks in one piece, without building a matcher: a
    query's first use of a term paid more for Whoosh's matcher set-up than for
    its postings.
    """
    entry = term_entry(terms._tindex, terms._keycoder(fieldname, tbytes))
    return None if entry is None else entry_arrays(terms, entry)


def entry_arrays(terms: Any, entry: bytes) -> tuple[np.ndarray, np.ndarray]:
    """:func:`term_arrays` of a term whose term table entry (a ``W3TermInfo``'s bytes) is read."""
    if entry[0]:  # inlined: (ids, weights, values) pickled after the statistics
        ids, weights, _ = pickle.loads(entry[_TERMINFO.size :])
        return np.array(ids, dtype=np.uint32), np.array(weights, dtype=np.float32)
    offset, length = _EXTENT.unpack_from(entry, _TERMINFO.size)
    # One read of the whole extent: with pread (see store.py) a read per block
    # cost more than the bytes of positions it skips.
    return _read_blocks(_Extent(terms._postfile.get(offset, length), offset), offset)


def term_entry(table: Any, key: bytes) -> bytes | None:
    """The value of ``key`` in a Whoosh hash table (``filetables.HashReader``), or None.

    The table's own lookup reads each probed slot, then the entry's lengths,
    its key and its value, each with its own read: about five reads per term
    and segment, which made most of a worker's first queries (store.py reads
    with ``pread``). This reads the probed slots in one read and the entry
    (lengths, key and, usually, the whole value) in another.
    """
    keyhash = table.hashfn(key)
    tablestart, numslots = table.tables[keyhash & 255]
    if not numslots:
        return None
    get = table.dbfile.get
    first = (keyhash >> 8) % numslots
    probed = 0
    while probed < numslots:
        slot = (first + probed) % numslots
        count = min(_PROBE_SLOTS, numslots - slot, numslots - probed)
        slots = _read(get, tablestart + slot * _POINTER.size, count * _POINTER.size)
        for slothash, position in _POINTER.iter_unpack(slots):
            if not position:
                return None  # an empty slot ends the probe
            if slothash == keyhash:
                entry: bytes = get(position, _LENGTHS.size + len(key) + _ENTRY_GUESS)
                keylen, datalen = _LENGTHS.unpack_from(entry)
                start = _LENGTHS.size + keylen
                if keylen == len(key) and entry[_LENGTHS.size : start] == key:
                    if len(entry) < start + datalen:
                        return _read(get, position + start, datalen)
                    return entry[start : start + datalen]
        probed += count
    return None


def _read(get: Callable[[int, int], bytes], position: int, length: int) -> bytes:
    """``length`` bytes at ``position``; a file shorter than its table says is damaged."""
    data = get(position, length)
    if len(data) != length:
        raise EOFError(f"the term table ends {length - len(data)} bytes short of what it lists")
    return data


_POINTER = filetables._pointer  # a slot: the key's hash, the entry's position
_LENGTHS = filetables._lengths  # an entry's key and value lengths
_TERMINFO = W3TermInfo._struct  # a term's statistics, then its extent or its inlined postings
_EXTENT = struct.Struct("!qi")  # the postings' offset and length (whoosh.system's long, int)
_PROBE_SLOTS = 4  # tables are half full: a probe rarely goes past the first slots
_ENTRY_GUESS = 64  # a term info with an extent is 35 bytes; inlined postings may be longer


class _Extent:
    """A term's posting bytes, read once, answering ``get`` by file position."""

    def __init__(self, data: bytes, offset: int) -> None:
        self._data = data
        self._offset = offset

    def get(self, position: int, length: int) -> bytes:
        start = position - self._offset
        return self._data[start : start + length]


def _read_blocks(postfile: Any, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids and weights of the term whose blocks start at ``offset``: per
    block its length (negative for the last), its pickled statistics, then its
    data, of which only the flags, ids and weights are read."""
    pos = offset + len(WHOOSH3_HEADER_MAGIC)
    ids: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    while True:
        head = postfile.get(pos, _BLOCK_LENGTH.size + _INFO_BYTES)
        (length,) = _BLOCK_LENGTH.unpack_from(head)
        stream = io.BytesIO(head)
        stream.seek(_BLOCK_LENGTH.size)
        n = pickle.load(stream)[0]
        data_at = pos + stream.tell()
        flags = head[stream.tell()]
        id_bytes, weight_bytes = _block_layout(flags, n)
        data = postfile.get(data_at, 1 + id_bytes + weight_bytes)
        ids.append(_decode_ids(flags, data, 1, n))
        weights.append(_decode_weights(flags, data, 1 + id_bytes, n))
        if length < 0:
            break
        pos += _BLOCK_LENGTH.size + abs(length)
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


class StoredFieldsColumn(VarBytesColumn):
    """Each document's stored fields as one uncompressed pickle (Whoosh compresses them)."""

    class Writer(VarBytesColumn.Writer):
        def add(self, docnum: int, v: Any) -> None:
            super().add(docnum, emptybytes if v is None else pickle.dumps(v, pickle.HIGHEST_PROTOCOL))

    class Reader(VarBytesColumn.Reader):
        def __getitem__(self, docnum: int) -> Any:
            length = self._lengths[docnum]
            if not length:
                return None
            return pickle.loads(self._dbfile.get(self._basepos + self._offsets[docnum], length))

        def __iter__(self) -> Any:
            for value in super().__iter__():
                yield pickle.loads(value) if value else None


STORED_FIELDS = StoredFieldsColumn()


class ArrayPerDocWriter(W3PerDocWriter):
    """Whoosh's per-document writer, storing fields in a :class:`StoredFieldsColumn`."""

    def _create_column(self, fieldname: str, column: Any) -> None:
        super()._create_column(fieldname, STORED_FIELDS if fieldname == "_stored" else column)


class ArrayPerDocReader(W3PerDocReader):
    """Whoosh's per-document reader, reading fields from a :class:`StoredFieldsColumn`."""

    def stored_fields(self, docnum: int) -> dict[str, Any]:
        return self._cached_reader("_stored", STORED_FIELDS)[docnum] or {}


class ArrayCodec(InliningCodec):
    """Whoosh's codec with array posting blocks and uncompressed stored fields
    (see the module docstring), and working inlining."""

    def __init__(self, blocklimit: int = BLOCK_LIMIT, inlinelimit: int = 8) -> None:
        super().__init__(blocklimit=blocklimit, compression=0, inlinelimit=inlinelimit)

    def per_document_writer(self, storage: Any, segment: Any) -> Any:
        return ArrayPerDocWriter(self, storage, segment)

    def per_document_reader(self, storage: Any, segment: Any) -> Any:
        return ArrayPerDocReader(storage, segment)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return ArrayPostingsWriter(
            dbfile, blocklimit=self._blocklimit, byteids=byteids, compression=0, inlinelimit=self._inlinelimit
        )

    def postings_reader(self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None, scorer: Any = None) -> Any:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term=term, scorer=scorer)
        offset, length = terminfo.extent()
        return ArrayLeafMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)
