"""Step 4b of the pipeline: how posting lists are laid out on disk.

Whoosh's codec stores each block of 128 postings as a zlib-compressed pickle
of tuples of Python ints, floats and bytes (pickle protocol 2, so even its
arrays become tuples). Reading a term back cost 1.1-1.9 microseconds per
posting on the 50,000-passage bench index (profiled on long lists: 42 % in
``pickle.loads``, 12 % in zlib): the first query to meet a common term paid
milliseconds for it.

:class:`ArrayCodec` keeps Whoosh's framing — per block its length and the
pickled statistics Whoosh uses to skip blocks — and stores the block's data
as plain little-endian arrays::

    flags        1 byte    bit 0: weights stored (else every weight is 1.0)
    ids          n x u4    document numbers, ascending
    weights      n x f4    when flagged
    values       fixed-size formats: n x size bytes; variable-size formats
                 (positions): (n + 1) x u4 offsets, then the bytes

so :func:`term_arrays` reads a term's postings with two
``numpy.frombuffer`` calls per block, and Whoosh's own matcher machinery
(phrases, ``docs_for_query``, merges) reads the same arrays through
:mod:`array`. Short lists are still inlined into the term table, as by
:class:`~search_service.whoosh_fixes.InliningCodec`. The index is larger
(no compression: 357 instead of 237 MB at 50,000 passages); those bytes are
memory-mapped, so they live in the page cache, shared by every worker.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
from array import array
from itertools import accumulate
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher
from whoosh.reading import TermNotFound
from whoosh.system import emptybytes
from whoosh.util.numeric import length_to_byte

from search_service.whoosh_fixes import InliningCodec, _InliningPostingsWriter

# Postings per block: larger blocks mean fewer block headers to read while
# scoring; Whoosh still skips whole blocks in phrase and boolean matching.
BLOCK_LIMIT = 512
_WEIGHTS = 1
_BLOCK_LENGTH = struct.Struct("!i")  # Whoosh's block length prefix
_BIG_ENDIAN = sys.byteorder == "big"


def _to_bytes(values: array) -> bytes:
    if _BIG_ENDIAN:  # the layout is little-endian on every machine
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_bytes(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


class ArrayPostingsWriter(_InliningPostingsWriter):
    """Whoosh's postings writer with array blocks (see the module docstring)."""

    def _write_block(self, last: bool = False) -> None:
        if self._byteids:  # term vectors: Whoosh's own layout (not used by this service)
            super()._write_block(last)
            return
        if not self._blockcount:
            self._postfile.write(WHOOSH3_HEADER_MAGIC)
        self._terminfo.add_block(self)
        n = len(self._ids)
        weights = self._weights
        flags = 0 if all(w == 1.0 for w in weights) else _WEIGHTS
        parts = [bytes((flags,)), _to_bytes(array("I", self._ids))]
        if flags & _WEIGHTS:
            parts.append(_to_bytes(array("f", weights)))
        size = self._format.fixed_value_size()
        values = self._values
        if size is None or size < 0:
            values = values if values else [emptybytes] * n
            parts.append(_to_bytes(array("I", accumulate((len(v) for v in values), initial=0))))
            parts.extend(values)
        elif size > 0:
            parts.extend(values)
        data = emptybytes.join(parts)
        # The same statistics tuple as Whoosh's blocks (compression 0), so its
        # matcher can skip blocks by last id, weight and lengths.
        info = (n, self._ids[-1], self._maxweight, 0,
                length_to_byte(self._minlength), length_to_byte(self._maxlength))
        infobytes = pickle.dumps(info, 2)
        length = len(infobytes) + len(data)
        self._postfile.write_int(-length if last else length)
        self._postfile.write(infobytes)
        self._postfile.write(data)
        self._blockcount += 1
        self._new_block()


class ArrayLeafMatcher(W3LeafMatcher):
    """Whoosh's block matcher over array blocks (for phrases, boolean queries and merges)."""

    def _read_data(self) -> None:
        self._data = self._postfile.get(self._dataoffset, self._nextoffset - self._dataoffset)

    def _layout(self) -> tuple[int, int, int]:
        """(flags, start of weights, start of values) of the current block's data."""
        if self._data is None:
            self._read_data()
        n = self._blocklength
        flags = self._data[0]
        weights_at = 1 + 4 * n
        return flags, weights_at, weights_at + (4 * n if flags & _WEIGHTS else 0)

    def _read_ids(self) -> None:
        _, weights_at, _ = self._layout()
        self._ids = _from_bytes("I", self._data[1:weights_at])

    def _read_weights(self) -> None:
        flags, weights_at, values_at = self._layout()
        if flags & _WEIGHTS:
            self._weights = _from_bytes("f", self._data[weights_at:values_at])
        else:
            self._weights = array("f", [1.0]) * self._blocklength

    def _read_values(self) -> None:
        _, _, values_at = self._layout()
        n = self._blocklength
        size = self._fixedsize
        data = self._data
        if size is None or size < 0:
            body = values_at + 4 * (n + 1)
            offsets = _from_bytes("I", data[values_at:body])
            self._values = [data[body + offsets[i]:body + offsets[i + 1]] for i in range(n)]
        elif size == 0:
            self._values = (None,) * n
        else:
            self._values = [data[values_at + i * size:values_at + (i + 1) * size] for i in range(n)]


def term_arrays(terms: Any, fieldname: str, tbytes: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(document numbers, weights) of a term in one segment, or None if it lacks the term.

    The arrays may be read-only views of the file's bytes (uint32, float32).

    ``terms`` is the segment's terms reader (``SegmentReader._terms``) of an
    :class:`ArrayCodec` segment. Reads the term table entry and then the
    term's blocks in one piece, without building a matcher: a query's first
    use of a term paid more for Whoosh's matcher set-up (about 35 us) than
    for its postings.
    """
    try:
        info = terms.term_info(fieldname, tbytes)
    except TermNotFound:
        return None
    if info.is_inlined():
        ids, weights, _ = info.inlined_postings()
        return np.array(ids, dtype=np.uint32), np.array(weights, dtype=np.float32)
    offset, length = info.extent()
    if isinstance(length, tuple):  # W3TermInfo.from_bytes leaves it as struct.unpack's tuple
        length = length[0]
    return _parse_blocks(terms._postfile.get(offset, length))


def _parse_blocks(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The postings of one term's blocks: magic, then per block its length
    (negative for the last), its pickled statistics and its array data."""
    stream = io.BytesIO(data)
    pos = len(WHOOSH3_HEADER_MAGIC)
    ids: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    while True:
        (length,) = _BLOCK_LENGTH.unpack_from(data, pos)
        stream.seek(pos + _BLOCK_LENGTH.size)
        n = pickle.load(stream)[0]
        start = stream.tell()
        ids.append(np.frombuffer(data, "<u4", n, start + 1))
        if data[start] & _WEIGHTS:
            weights.append(np.frombuffer(data, "<f4", n, start + 1 + 4 * n))
        else:
            weights.append(np.ones(n, dtype=np.float32))
        if length < 0:
            break
        pos += _BLOCK_LENGTH.size + length
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


class ArrayCodec(InliningCodec):
    """Whoosh's codec with array posting blocks (see the module docstring) and working inlining."""

    def __init__(self, blocklimit: int = BLOCK_LIMIT, inlinelimit: int = 8) -> None:
        super().__init__(blocklimit=blocklimit, compression=0, inlinelimit=inlinelimit)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return ArrayPostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                                   compression=0, inlinelimit=self._inlinelimit)

    def postings_reader(self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None, scorer: Any = None) -> Any:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term=term, scorer=scorer)
        offset, length = terminfo.extent()
        return ArrayLeafMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)
