"""Serving the app with gunicorn (pre-forked workers, a few threads each).

Why gunicorn: each request is CPU-bound Python (jieba, Whoosh), so one
process serves one request at a time under the GIL; pre-forked worker
processes use every core, and with ``preload_app`` jieba's dictionary is
loaded once in the master and shared by the workers copy-on-write.

Why threads too (gunicorn's ``gthread`` workers): with one thread a worker,
a client that sends half a request holds the whole worker until the
timeout, and two such clients stall a two-worker server. Each worker's event
loop collects a request's bytes as they arrive and gives a thread only a
request that is in (:class:`ServeWorker`), so silent and slow clients hold no
thread and a normal request goes on being answered. Threads still take turns
under the GIL; ``--timeout`` stays the time limit of a request: a worker with
a request running longer exits, and gunicorn replaces it (:class:`Deadline`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import json
import logging
import os
import re
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import gunicorn.util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from search_service.errors import IndexUnavailable
from search_service.settings import Settings
from search_service.web.app import BODY_ERROR, SECURITY_HEADERS, create_app
from search_service.web.metrics import MULTIPROC_ENV

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


# Per worker. A slow client holds no thread while its head or a body of announced
# length comes in (the event loop collects them); a chunked body is read by a thread,
# for SEARCH_BODY_SECONDS at most: enough threads that a handful of those leave
# others for normal requests.
THREADS = 8


class Deadline:
    """The request time limit of a threaded worker: gunicorn's ``timeout`` only
    restarts a worker that stops answering its master, which a thread busy with
    one request does not. A watcher thread makes a worker with a request
    running over ``seconds`` exit (what gunicorn does to a stuck sync worker)."""

    def __init__(self, seconds: float, exit: Any = os._exit) -> None:
        self.seconds = seconds
        self._exit = exit
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            self._started[threading.get_ident()] = time.monotonic()

    def end(self, *_: Any) -> None:
        with self._lock:
            self._started.pop(threading.get_ident(), None)

    def overdue(self, now: float | None = None) -> float:
        """The longest-running request's seconds over the limit (0 when none is)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            oldest = min(self._started.values(), default=now)
        return max(0.0, now - oldest - self.seconds)

    def watch(self, every: float = 1.0) -> None:
        def run() -> None:
            while True:
                time.sleep(every)
                late = self.overdue()
                if late:
                    log.error("a request ran over the %s s time limit: worker %s exits", self.seconds, os.getpid())
                    self._exit(1)

        threading.Thread(target=run, name="request-deadline", daemon=True).start()


def body_first(wsgi_app: Any, max_bytes: int, seconds: float) -> Any:
    """``wsgi_app`` called once the request's body is in memory, read within ``seconds``.

    The time a client takes to send its body is the client's: it must not count against
    the request's time limit (:class:`Deadline`, which ends the whole worker), nor hold a
    thread for as long as the client likes. Past ``seconds`` the socket's reading side is
    shut, which ends the read; the app then answers 408. A body gunicorn cannot decode (a
    chunk size of 21 hex digits) is 400. At most ``max_bytes + 1`` bytes are read: a
    larger body is the app's 413."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked and environ.get("CONTENT_LENGTH", "") in ("", "0"):
            return wsgi_app(environ, start_response)
        sock = environ.get("gunicorn.socket")
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            data = environ["wsgi.input"].read(max_bytes + 1)
        except Exception as exc:  # noqa: BLE001  (gunicorn's NoMoreData, InvalidChunkSize, ...; an OSError)
            data = b""
            environ[BODY_ERROR] = (
                (408, "request_timeout", f"the request body did not arrive within {seconds:g} s")
                if expired.is_set()
                else (400, "malformed_body", f"the request body cannot be read ({type(exc).__name__})")
            )
        finally:
            timer.cancel()
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return wsgi_app(environ, start_response)

    return app


def one_at_a_time(wsgi_app: Any) -> Any:
    """``wsgi_app`` handling one request without a body at a time in this process.

    A worker's threads take turns under the GIL anyway; but requests handled at
    once (ranking in NumPy, reading with ``pread``) hand it back and forth at
    every call that lets it go, and each then costs more CPU time than alone.
    Queued on a lock, they do not. A request with a body is left out: the app
    reads its body from the client, and a slow client must hold one thread, not
    the worker. Reading a request's head and writing its answer are gunicorn's,
    outside the app, and still overlap."""
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("CONTENT_LENGTH", "") in ("", "0") and "HTTP_TRANSFER_ENCODING" not in environ:
            with lock:
                return wsgi_app(environ, start_response)
        return wsgi_app(environ, start_response)

    return app


def _port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (gunicorn would retry for seconds,
    printing a traceback each time), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


MAX_REQUEST_LINE = 8190
# What gunicorn itself answers (a request it cannot parse or over its limits), in the API's error codes.
_GUNICORN_CODES = {
    400: "bad_request",
    403: "forbidden",
    408: "request_timeout",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def write_json_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's error answer in the API's one JSON error shape (gunicorn writes HTML)."""
    body = (
        json.dumps(
            {
                "error": {
                    "status": status,
                    "code": _GUNICORN_CODES.get(status, "bad_request"),
                    "message": message or reason,
                }
            },
            ensure_ascii=False,
        ).encode("utf-8")
        + b"\n"
    )
    headers = "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items())
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)


class _ErrorPage:
    """Where gunicorn's worker writes its own (HTML) error answer: kept, to read its status line."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # already non-blocking: gunicorn writes with one sendall

    def sendall(self, data: bytes) -> None:
        self.data += data


class ServeWorker(ThreadWorker):
    """gunicorn's threaded worker, with a request's head and body read by its event loop,
    and gunicorn's own answers in the API's one JSON error shape.

    gunicorn hands a connection to a thread as soon as it is accepted: a silent one holds
    the thread for seconds, and once a byte arrived the thread parses the head with
    blocking reads, for as long as the client trickles it; a few dozen such sockets took
    every thread. Here the event loop collects the bytes, without blocking, until the head
    is whole, and its body with it (:class:`_Body`), and only then gives the connection to
    a thread, with those bytes put back in front of gunicorn's parser: a thread only ever
    parses what has arrived. A head not whole within ``head_seconds`` is answered 408
    (closed when nothing came), a body not in within ``body_seconds`` 408; a body announced
    with ``Expect: 100-continue`` is read by the thread (:func:`body_first` bounds it).
    Set the limits with :func:`serve_worker`."""

    head_seconds = 10.0
    body_seconds = 10.0
    max_body_bytes = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: dict[Any, _Arriving] = {}  # by connection, in order of their deadlines' start
        # gunicorn refuses a longer head itself (414, 431): collecting more is pointless.
        self._head_limit = (
            self.cfg.limit_request_line + self.cfg.limit_request_fields * (self.cfg.limit_request_field_size + 2) + 4
        )

    def enqueue_req(self, conn: Any) -> None:
        """Called by gunicorn whenever a connection's next request is to be read (accepted,
        kept alive and readable, bytes left over from the last request)."""
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        wait = _Arriving(bytearray(held), time.monotonic() + self.head_seconds)
        if self._ready(conn, wait):
            return
        conn.sock.setblocking(False)
        self._waiting[conn] = wait
        self.poller.register(conn.sock, selectors.EVENT_READ, functools.partial(self._readable, conn))

    def _readable(self, conn: Any, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        wait = self._waiting[conn]
        wait.data += data
        if self._ready(conn, wait, waiting=True):
            self.poller.unregister(sock)
            del self._waiting[conn]

    def _ready(self, conn: Any, wait: _Arriving, waiting: bool = False) -> bool:
        """Whether ``conn`` went to a thread: its head is whole and its body is in, or as
        much of it as the app reads (a whole head starts the body's own time limit)."""
        if wait.body is None:
            end = _head_end(wait.data)
            if end is None and len(wait.data) <= self._head_limit:
                return False
            wait.body = _Body.after(wait.data, end, self.max_body_bytes)
            if not wait.body.arrived(wait.data):
                wait.deadline = time.monotonic() + self.body_seconds
                if waiting:  # keeps its place by deadline: moved to the end
                    self._waiting[conn] = self._waiting.pop(conn)
                return False
        elif not wait.body.arrived(wait.data):
            return False
        conn.arrived = bytes(wait.data)
        conn.data_ready = True  # gunicorn's own wait for a first byte is over
        super().enqueue_req(conn)
        return True

    def handle(self, conn: Any) -> Any:
        arrived = getattr(conn, "arrived", None)
        if isinstance(arrived, bytes):
            conn.arrived = None
            try:
                conn.sock.setblocking(True)
                conn.init()
            except OSError:
                return False
            conn.parser.unreader.unread(arrived)
        return super().handle(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, wait in list(self._waiting.items()):
            if wait.deadline > now and (self.alive or wait.data):
                continue  # a stopping worker closes at once what sent nothing yet
            if wait.data:  # something came, not all of it: say why the connection ends
                what = "request line and headers" if wait.body is None else "request body"
                seconds = self.head_seconds if wait.body is None else self.body_seconds
                with contextlib.suppress(OSError):
                    write_json_error(
                        conn.sock, 408, "Request Timeout", f"the {what} did not arrive within {seconds:g} s"
                    )
            self._drop(conn)

    def _drop(self, conn: Any) -> None:
        self._waiting.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """What gunicorn answers itself (a request it cannot parse, or over its limits), in the
        API's one JSON error shape: gunicorn decides the status, as for its own page."""
        page = _ErrorPage()
        super().handle_error(req, page, addr, exc)
        status = int(page.data.split(b"\r\n", 1)[0].split(b" ", 2)[1])
        reason = HTTPStatus(status).phrase  # gunicorn says "Bad Request" for its 501 too
        # gunicorn's own message for a bad request (what it could not parse); none for its
        # own failures, as a 500 of the app says nothing of its insides either.
        message = f"{reason}: {exc}" if status < 500 else reason
        with contextlib.suppress(OSError):  # the client is gone
            write_json_error(client, status, reason, message)


@dataclass
class _Arriving:
    """A connection's next request while its bytes come in."""

    data: bytearray
    deadline: float
    body: _Body | None = None  # once the head is whole


def _head_end(data: bytearray) -> int | None:
    """Where a request's head ends in ``data`` (its blank line included), or None."""
    ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := data.find(mark)) >= 0]
    return min(ends) if ends else None


class _Body:
    """How far a request's body has come in, read from its framing as gunicorn will: a
    thread gets the request once it is whole, or once more than ``max_bytes`` of its body
    are in (the app reads no more: 413). A framing the loop does not follow (``Expect:
    100-continue``, a transfer coding other than chunked, conflicting lengths) or cannot
    read (a malformed chunk) goes to the thread at once: gunicorn answers it, and
    :func:`body_first` bounds the read."""

    def __init__(self, start: int, length: int | None, chunked: bool, max_bytes: int) -> None:
        self.start = start
        self.length = length  # None: no body, or the thread's to read
        self.chunked = chunked
        self.max_bytes = max_bytes
        self._next = start  # chunked: where the next chunk's size line starts
        self._total = 0  # chunked: the sizes of the whole chunks before it

    @classmethod
    def after(cls, data: bytearray, head_end: int | None, max_bytes: int) -> _Body:
        if head_end is None:  # over gunicorn's head limits: it refuses the head
            return cls(0, None, False, max_bytes)
        lengths, codings, expect = [], [], False
        for line in bytes(data[:head_end]).split(b"\n")[1:]:
            name, colon, value = line.partition(b":")
            name = name.strip().lower()
            if not colon:
                continue
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings.append(value.strip().lower())
            elif name == b"expect":
                expect = True
        if expect:
            return cls(head_end, None, False, max_bytes)
        if codings:
            return cls(head_end, None, codings == [b"chunked"] and not lengths, max_bytes)
        if len(lengths) == 1 and lengths[0].isdigit():
            return cls(head_end, int(lengths[0]), False, max_bytes)
        return cls(head_end, None, False, max_bytes)  # no body, or gunicorn refuses the lengths

    def arrived(self, data: bytearray) -> bool:
        if self.chunked:
            return self._chunks_arrived(data)
        if self.length is None:
            return True
        return len(data) - self.start >= min(self.length, self.max_bytes + 1)

    def _chunks_arrived(self, data: bytearray) -> bool:
        while True:
            line_end = data.find(b"\r\n", self._next)
            if line_end < 0:
                return len(data) - self._next > 1024  # no size line is that long: gunicorn refuses it
            size_text = bytes(data[self._next : line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                return True  # malformed: gunicorn answers 400
            chunk = line_end + 2
            if size == 0:  # the last chunk; then trailers, up to an empty line
                return data.find(b"\r\n", chunk) == chunk or data.find(b"\r\n\r\n", chunk) >= 0
            if self._total + min(size, len(data) - chunk) > self.max_bytes:
                return True  # the app reads max_bytes + 1 and answers 413
            if len(data) < chunk + size + 2:
                return False
            self._total += size
            self._next = chunk + size + 2


def serve_worker(head_seconds: float, body_seconds: float, max_body_bytes: int) -> type[ServeWorker]:
    """The worker class with these limits (gunicorn makes the workers from a class)."""
    limits = {"head_seconds": head_seconds, "body_seconds": body_seconds, "max_body_bytes": max_body_bytes}
    return type("ServeWorker", (ServeWorker,), limits)


def gunicorn_options(
    host: str, port: int, workers: int, timeout: int, worker: type[ServeWorker] = ServeWorker
) -> dict[str, Any]:
    """gunicorn's settings; ``timeout`` is the request time limit (a stuck worker is killed and replaced)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": worker,
        "threads": THREADS,
        "preload_app": True,
        "timeout": timeout,
        "graceful_timeout": 10,
        # The longest request line gunicorn allows: every GET the API accepts fits (a
        # 512-character /analyze text is 6 KB percent-encoded); beyond it, 414.
        "limit_request_line": MAX_REQUEST_LINE,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 2, timeout: int = 30) -> int:
    """Run the API until interrupted. Exits 1 at once when the port is taken or there is no index."""
    busy = _port_taken(host, port)
    if busy:
        print(f"search-service serve: cannot listen on {host}:{port}: {busy}", file=sys.stderr)
        return 1
    _log_access_to_stderr()
    gunicorn_log = logging.getLogger("gunicorn.error")
    if not settings.queries_logged and not any(isinstance(f, QueryRedactor) for f in gunicorn_log.filters):
        gunicorn_log.addFilter(QueryRedactor())
    metrics_dir = _metrics_dir()
    master = os.getpid()
    # Until gunicorn takes SIGTERM over, it ends start-up through the finally below (by
    # default it would end the process on the spot, leaving the metrics folder behind).
    previous = signal.signal(signal.SIGTERM, _end_start_up)
    try:
        return _run(settings, host, port, workers, timeout)
    finally:
        # A worker is forked inside _run and leaves through here too (gunicorn ends it
        # with SystemExit): only the master cleans up, the others still write the folder.
        if os.getpid() == master:
            signal.signal(signal.SIGTERM, previous)  # a caller (the tests) keeps its own handler
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
                # Not left naming a folder that is gone (a caller's later servers would inherit it).
                os.environ.pop(MULTIPROC_ENV, None)


def _end_start_up(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _run(settings: Settings, host: str, port: int, workers: int, timeout: int) -> int:
    """:func:`serve` once its metrics folder is made: the app, the index, gunicorn."""
    app = create_app(settings.__dict__)
    service = app.extensions["search"]
    try:
        # Open the index once in the master: fails fast without an index, and
        # loads jieba's dictionary before the workers fork.
        service.current()
    except IndexUnavailable as exc:
        print(f"search-service serve: {exc.message}", file=sys.stderr)
        return 1
    # Workers must not share the master's open files (one seek pointer for all):
    # each opens its own right after it is forked, before its first request.
    service.close()

    if service.engine.ranks_in_process:
        app.wsgi_app = one_at_a_time(app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = body_first(app.wsgi_app, settings.max_body_bytes, settings.body_seconds)  # type: ignore[method-assign]
    deadline = Deadline(timeout)
    app.before_request(deadline.begin)
    app.teardown_request(deadline.end)

    def open_index_in_worker(worker: Any) -> None:
        deadline.watch()
        app.extensions["metrics"].reserve(worker.pid)
        try:
            service.current()
        except IndexUnavailable as exc:
            # A worker that cannot open any version must still boot: gunicorn
            # stops the whole server when a worker fails to, taking the healthy
            # ones with it. This one answers 503 with the reason, and opens a
            # version as soon as one can be read.
            log.error("worker %s serves no index yet: %s", worker.pid, exc.message)

    # Objects loaded so far (jieba's dictionary above all) live as long as the
    # process: move them out of the garbage collector's reach, or each
    # worker's first full collection writes to every page holding one and so
    # copies the master's memory page by page (copy-on-write).
    gc.freeze()
    worker = serve_worker(settings.head_seconds, settings.body_seconds, settings.max_body_bytes)
    options = gunicorn_options(host, port, workers, timeout, worker)
    options["post_worker_init"] = open_index_in_worker
    options["child_exit"] = lambda server, worker: _worker_gone(worker.pid)
    options["when_ready"] = lambda server: print(
        f"search-service serve: listening on http://{host}:{port}/ ({workers} workers, index version "
        f"{service.engine.current_name()})",
        file=sys.stderr,
        flush=True,
    )
    _Gunicorn(app, options).run()
    return 0


class QueryRedactor(logging.Filter):
    """gunicorn's own log lines without the query strings of the requests they name (a
    request line it could not parse, an error handling a request): what
    ``SEARCH_LOG_QUERIES=false`` promises for the app's lines too."""

    _QUERY = re.compile(r"\?[^\s'\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._QUERY.sub("?…", record.getMessage())
        record.args = ()
        return True


def _log_access_to_stderr() -> None:
    """One JSON line a request on stderr (web/app.py writes them), unless the operator
    configured the access logger already."""
    access = logging.getLogger("search_service.access")
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False


def _metrics_dir() -> str | None:
    """Where the workers' metrics go (prometheus_client's multiprocess mode): the
    operator's PROMETHEUS_MULTIPROC_DIR, or a fresh folder removed at exit (returned)."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    folder = tempfile.mkdtemp(prefix="search-service-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


def _worker_gone(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
