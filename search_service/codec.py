"""Step 4b of the pipeline: how posting lists are laid out on disk.

Whoosh's codec stores each block of 128 postings as a zlib-compressed pickle
of tuples of Python ints, floats and bytes (pickle protocol 2, so even its
arrays become tuples). Reading one back cost 1.1-1.9 microseconds per posting
on the 50,000-passage bench index, 60 % of it in ``pickle.loads`` and 20 % in
zlib: the first query to meet a common term paid several milliseconds for it,
and every worker had to keep the decoded lists in a private cache.

:class:`ArrayCodec` keeps Whoosh's framing — per block its length and the
pickled statistics Whoosh uses to skip blocks — and stores the block's data
as plain little-endian arrays::

    flags        1 byte    bit 0: weights stored (else every weight is 1.0)
    ids          n x u4    document numbers, ascending
    weights      n x f4    when flagged
    values       fixed-size formats: n x size bytes; variable-size formats
                 (positions): (n + 1) x u4 offsets, then the bytes

so :meth:`ArrayLeafMatcher.arrays` reads a term's postings with two
``numpy.frombuffer`` calls per block, and Whoosh's own matcher machinery
(phrases, ``docs_for_query``, merges) reads the same arrays through
:mod:`array`. Short lists are still inlined into the term table, as by
:class:`~search_service.whoosh_fixes.InliningCodec`. The index is larger
(no compression), and the extra bytes live in the page cache, shared by
every worker, rather than in each worker's heap.
"""

from __future__ import annotations

import sys
from pickle import dumps
from array import array
from itertools import accumulate
from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher
from whoosh.system import emptybytes
from whoosh.util.numeric import length_to_byte

from search_service.whoosh_fixes import InliningCodec, _InliningPostingsWriter

# Postings per block: larger blocks mean fewer block headers to read while
# scoring; Whoosh still skips whole blocks in phrase and boolean matching.
BLOCK_LIMIT = 512
_WEIGHTS = 1
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
        infobytes = dumps(info, 2)
        length = len(infobytes) + len(data)
        self._postfile.write_int(-length if last else length)
        self._postfile.write(infobytes)
        self._postfile.write(data)
        self._blockcount += 1
        self._new_block()


class ArrayLeafMatcher(W3LeafMatcher):
    """Whoosh's block matcher over array blocks, plus :meth:`arrays` for scoring."""

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

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All remaining postings: (document numbers as int64, weights as float64)."""
        ids: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        while self.is_active():
            n = self._blocklength
            data = self._postfile.get(self._dataoffset, self._nextoffset - self._dataoffset)
            ids.append(np.frombuffer(data, "<u4", n, 1))
            if data[0] & _WEIGHTS:
                weights.append(np.frombuffer(data, "<f4", n, 1 + 4 * n))
            else:
                weights.append(np.ones(n, dtype=np.float32))
            self._next_block()
        if not ids:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        return np.concatenate(ids).astype(np.int64), np.concatenate(weights).astype(np.float64)


class ArrayCodec(InliningCodec):
    """Whoosh's codec with array posting blocks (see the module docstring) and working inlining."""

    def __init__(self, blocklimit: int = BLOCK_LIMIT, compression: int = 0, inlinelimit: int = 8) -> None:
        super().__init__(blocklimit=blocklimit, compression=compression, inlinelimit=inlinelimit)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return ArrayPostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                                   compression=0, inlinelimit=self._inlinelimit)

    def postings_reader(self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None, scorer: Any = None) -> Any:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term=term, scorer=scorer)
        offset, length = terminfo.extent()
        return ArrayLeafMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)
