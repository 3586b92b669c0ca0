"""serve's event loop reading a request's framing (no server: the rules alone)."""

from hypothesis import given
from hypothesis import strategies as st

from search_service.web.serve import _Body, _head_end

HEAD = b"POST /search HTTP/1.1\r\nHost: a\r\n"
MAX = 1000


def _chunked(pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def _deliveries(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` as it arrives: every prefix at the ``cuts``, then whole."""
    return [data[:c] for c in sorted(set(cuts)) if c < len(data)] + [data]


def _body(data: bytes) -> _Body:
    end = _head_end(bytearray(data))
    return _Body.after(bytearray(data), end, MAX)


@given(st.lists(st.binary(max_size=300), max_size=6), st.lists(st.integers(0, 3000), max_size=12))
def test_a_chunked_body_is_in_once_its_last_chunk_is_or_once_it_passes_the_limit(pieces, cuts):
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    request = head + _chunked(pieces)
    body = _body(head)
    over_at = None  # how much of the request is in once the body passes MAX
    if sum(map(len, pieces)) > MAX:
        sent, at = 0, len(head)
        for p in (p for p in pieces if p):
            line = b"%x\r\n" % len(p)
            if sent + len(p) > MAX:
                over_at = at + len(line) + (MAX - sent) + 1
                break
            sent += len(p)
            at += len(line) + len(p) + 2
    for data in _deliveries(request, cuts):
        whole = data == request
        if data.startswith(head):
            in_ = body.arrived(bytearray(data))
            expected = whole or (over_at is not None and len(data) >= over_at)
            assert in_ == expected, (len(data), len(request), over_at)


@given(st.integers(0, 3 * MAX), st.lists(st.integers(0, 4000), max_size=8))
def test_a_sized_body_is_in_once_it_is_whole_or_passes_the_limit(length, cuts):
    head = HEAD + b"Content-Length: %d\r\n\r\n" % length
    request = head + b"x" * length
    for data in _deliveries(request, cuts):
        if len(data) >= len(head):
            assert _body(data).arrived(bytearray(data)) == (len(data) - len(head) >= min(length, MAX + 1))


def test_what_the_loop_does_not_follow_goes_to_the_thread_at_once():
    for extra in (
        b"Expect: 100-continue\r\nContent-Length: 500\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"",
    ):
        data = bytearray(HEAD + extra + b"\r\n")
        assert _body(bytes(data)).arrived(data)
    malformed = bytearray(HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert _body(bytes(malformed)).arrived(malformed)  # gunicorn answers 400 at once
