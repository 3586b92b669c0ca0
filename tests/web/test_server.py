"""Against a real gunicorn server on a free loopback port."""

import contextlib
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests

from search_service.ingest.reindex import build_index
from search_service.settings import Settings
from tests.helpers import SEED_CORPUS, TRADITIONAL_SEED, assert_error
from tests.web.servers import start_server, stop_server, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture
def corpus_and_settings(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = Settings.from_env(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))
    build_index(settings)
    return corpus, settings


@pytest.fixture
def server(corpus_and_settings, tmp_path):
    corpus, settings = corpus_and_settings
    log = tmp_path / "server.log"
    proc, url = start_server(Path(settings.index_dir), log)
    wait_ready(proc, url, log)
    yield url, corpus, settings
    stop_server(proc)
    text = log.read_text()
    assert "Traceback" not in text
    assert f"search-service serve: listening on {url}/ (2 workers, index version " in text


def test_real_server_answers_cross_script_queries(server):
    url, _, _ = server
    r = requests.get(url + "/search", params={"q": "医保卡被锁了怎么解锁", "size": 3}, timeout=5)
    assert r.status_code == 200
    hit = r.json()["hits"][0]
    assert hit["doc_id"] == TRADITIONAL_SEED and "<mark>醫保卡" in hit["highlight"]
    r = requests.post(url + "/search", json={"q": "醫保卡密碼忘了怎麼辦"}, timeout=5)
    assert r.status_code == 200 and r.json()["hits"][0]["doc_id"] != TRADITIONAL_SEED
    r = requests.get(url + "/nowhere", timeout=5)
    assert_error(r, 404, "not_found")
    r = requests.post(url + "/search", data=b"x" * 100_000, headers={"Content-Type": "application/json"}, timeout=5)
    assert_error(r, 413)
    assert requests.get(url + "/health", timeout=5).json()["status"] == "ok"
    assert requests.get(url + "/favicon.ico", timeout=5).headers["Content-Type"].startswith("image/svg+xml")


def test_reindex_switches_versions_without_failed_requests(server):
    url, corpus, settings = server
    failures: list[str] = []
    done = threading.Event()
    counts = [0]

    def client():
        session = requests.Session()
        while not done.is_set():
            try:
                with session.get(url + "/search", params={"q": "医保卡 密码"}, timeout=10) as r:
                    pass
                if r.status_code != 200 or not r.json()["hits"]:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                counts[0] += 1
            except requests.RequestException as exc:
                failures.append(repr(exc))
        session.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for n, word in enumerate(["独角兽", "麒麟"]):
            time.sleep(0.5)
            (corpus / f"new{n}.txt").write_text(f"新文档{n}\n{word}医保卡的密码可以在社保局重置。", encoding="utf-8")
            assert build_index(settings, incremental=True).switched
            found_at = None
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                r = requests.get(url + "/search", params={"q": word}, timeout=5)
                if r.status_code == 200 and r.json()["total"] >= 1:
                    found_at = time.monotonic()
                    break
                time.sleep(0.05)
            assert found_at is not None, f"{word} not served within 2 s of the switch"
            # Every worker answers from the new version within 2 s.
            time.sleep(1.0)
            for _ in range(6):
                assert requests.get(url + "/search", params={"q": word}, timeout=5).json()["total"] == 1
    finally:
        done.set()
        for t in threads:
            t.join()
    assert counts[0] > 20
    assert failures == []


def test_serve_without_an_index_exits_with_a_clear_message(tmp_path):
    proc, _ = start_server(tmp_path / "none", tmp_path / "log")
    proc.wait(timeout=30)
    err = (tmp_path / "log").read_text()
    assert proc.returncode == 1
    assert "run `search-service reindex` first" in err and "Traceback" not in err


def test_a_worker_restarted_while_no_version_can_be_read_boots_and_answers_503(corpus_and_settings, tmp_path):
    """CURRENT names a truncated version: the running workers keep the last good one;
    a worker started now (this one killed with -9) can open none. It must boot and
    answer 503, not exit: gunicorn would stop the whole server with it."""
    import os
    import signal

    import psutil

    from search_service.engine.whoosh.layout import IndexRoot

    corpus, settings = corpus_and_settings
    log = tmp_path / "server.log"
    proc, url = start_server(Path(settings.index_dir), log)
    try:
        wait_ready(proc, url, log)
        (corpus / "new.txt").write_text("新文档\n医保卡的新说明。", encoding="utf-8")
        build_index(settings)
        for f in IndexRoot(settings.index_dir).current_dir().iterdir():
            if f.suffix == ".seg":
                f.write_bytes(f.read_bytes()[:20])  # truncated on disk
        time.sleep(1.0)  # the workers notice, and keep the good version
        workers = psutil.Process(proc.pid).children()
        os.kill(workers[0].pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and len({p.pid for p in psutil.Process(proc.pid).children()} - {w.pid for w in workers}) < 1
        ):
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None, log.read_text()
        statuses = {requests.get(url + "/search", params={"q": "医保卡"}, timeout=5).status_code for _ in range(20)}
        assert statuses <= {200, 503} and statuses, statuses
        health = requests.get(url + "/health", timeout=5)
        assert health.status_code in (200, 503)
    finally:
        stop_server(proc)


def test_slow_clients_do_not_delay_a_normal_request(server):
    """Clients that send half a request line, half the headers or half a chunked
    body hold no worker: a normal request is answered at once."""
    import socket

    url, _, _ = server
    host, port = url.split("//")[1].split(":")
    slow = []
    for partial in (
        b"GET /search?q=%E5%8C%BB",
        b"GET /search?q=x HTTP/1.1\r\nHost: a\r\nX-A",
        b"POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b'Content-Type: application/json\r\n\r\n5\r\n{"q":',
        b'POST /search HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"q":',
        b"GET /health HTTP/1.1\r\nHo",
    ):
        s = socket.create_connection((host, int(port)))
        s.sendall(partial)
        slow.append(s)
    try:
        time.sleep(0.5)
        for _ in range(5):
            began = time.monotonic()
            r = requests.get(url + "/search", params={"q": "医保卡"}, timeout=10)
            assert r.status_code == 200 and time.monotonic() - began < 1.0
    finally:
        for s in slow:
            s.close()


def test_a_worker_handles_one_request_without_a_body_at_a_time():
    """Requests without a body queue on one lock per process (ranking in NumPy, they
    would hand the GIL back and forth); a request with a body does not (its body is
    read from a client that may be slow)."""
    from search_service.web.serve import one_at_a_time

    running, most = [0], [0]
    lock = threading.Lock()
    posts_together = threading.Barrier(6, timeout=10)  # broken unless all six run at once

    def inner(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            posts_together.wait()
            return [b""]
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return [b""]

    app = one_at_a_time(inner)
    gets = [{"REQUEST_METHOD": "GET"}, {"REQUEST_METHOD": "GET", "CONTENT_LENGTH": "0"}] * 3
    posts = [
        {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10"},
        {"REQUEST_METHOD": "POST", "HTTP_TRANSFER_ENCODING": "chunked"},
    ] * 3
    failed = []

    def call(environ):
        try:
            app(environ, None)
        except threading.BrokenBarrierError as exc:
            failed.append(exc)

    threads = [threading.Thread(target=call, args=(environ,)) for environ in gets + posts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == [1] and not failed


def test_a_request_over_the_time_limit_ends_its_worker():
    from search_service.web.serve import Deadline

    exits = []
    deadline = Deadline(2.0, exit=exits.append)
    deadline.begin()
    assert deadline.overdue() == 0
    assert deadline.overdue(time.monotonic() + 3.0) > 0.9
    deadline.watch(every=0.05)
    time.sleep(0.1)
    assert exits == []
    deadline.seconds = 0.0
    time.sleep(0.2)
    assert exits and exits[0] == 1
    deadline.end()
    assert deadline.overdue(time.monotonic() + 100) == 0


def test_a_chunked_body_over_the_limit_is_413(server):
    url, _, _ = server

    def body():
        yield b'{"q": "'
        for _ in range(100):
            yield b"x" * 1000

    r = requests.post(url + "/search", data=body(), headers={"Content-Type": "application/json"}, timeout=10)
    assert_error(r, 413, "request_too_large")
    small = requests.post(
        url + "/search",
        data=iter([b'{"q": "', "医保卡".encode(), b'"}']),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert small.status_code == 200 and small.json()["total"] > 0


def test_what_gunicorn_answers_itself_is_in_the_json_error_shape(server):
    url, _, _ = server
    # Every GET the parameters allow fits: a 512-character /analyze text of four-byte characters.
    assert requests.get(url + "/analyze", params={"text": "𠀀" * 512}, timeout=5).status_code == 200
    for response, status, code in [
        (requests.get(url + "/search", params={"q": "x", "doc": ["医" * 500] * 3}, timeout=5), 414, "uri_too_long"),
        (requests.get(url + "/health", headers={"X-Big": "x" * 9000}, timeout=5), 431, "headers_too_large"),
    ]:
        assert response.headers["Content-Type"] == "application/json"
        assert_error(response, status, code)


def test_metrics_add_up_every_worker(server):
    url, _, _ = server
    before = _search_count(url)
    for i in range(30):  # a new connection each: gunicorn spreads them over both workers
        assert requests.get(url + "/search", params={"q": f"医保卡 {i}"}, timeout=5).status_code == 200
    assert _search_count(url) - before == 30


def _search_count(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('search_http_requests_total{method="GET",route="/search",status="200"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def quick_body_server(corpus_and_settings, tmp_path):
    """A server giving clients 2 s to send a body, and a request 30 s."""
    _, settings = corpus_and_settings
    log = tmp_path / "server.log"
    proc, url = start_server(Path(settings.index_dir), log, SEARCH_BODY_SECONDS="2")
    wait_ready(proc, url, log)
    yield url, log
    stop_server(proc)


def _raw(url, data):
    import socket

    host, port = url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(data)
    return s


def _answer(s, timeout):
    s.settimeout(timeout)
    got = b""
    while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_a_slow_or_broken_body_costs_only_its_own_request(quick_body_server):
    """Bodies trickled a chunk at a time (upload time the client controls) are answered 408
    once SEARCH_BODY_SECONDS have passed, not counted against the request's time limit
    (which used to end whole workers, and other clients' requests with them), and so is a
    chunk of 21 hex digits' size that never comes; a chunk size that is not one is 400 at
    once. Other clients are answered all along, and no worker is replaced (issue 38, 2)."""
    url, log = quick_body_server
    head = b"POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    slow = [_raw(url, head + b"1\r\n{\r\n") for _ in range(4)]
    # A chunk of 21 hex digits promises more than it sends: slow too.
    slow.append(_raw(url, head + b"fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"))
    began = time.monotonic()
    broken = _raw(url, head + b"zz\r\n{}\r\n0\r\n\r\n")  # not a chunk size at all
    assert _answer(broken, 5).split(b"\r\n")[0].split()[1] == b"400"
    assert time.monotonic() - began < 1.5
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for s in slow:
                with contextlib.suppress(OSError):
                    s.sendall(b"1\r\n \r\n")
            time.sleep(0.3)

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        while time.monotonic() - began < 1.5:  # normal clients meanwhile
            r = requests.get(url + "/search", params={"q": "医保卡"}, timeout=5)
            assert r.status_code == 200
        answers = [_answer(s, 10) for s in slow]
    finally:
        stop.set()
        for s in [*slow, broken]:
            s.close()
    for answer in answers:
        assert answer.split(b"\r\n")[0].split()[1] == b"408", answer[:200]
        assert b'"code": "request_timeout"' in answer or b'"code":"request_timeout"' in answer
    assert time.monotonic() - began < 10
    assert requests.post(url + "/search", json={"q": "医保卡"}, timeout=5).status_code == 200
    assert "exits" not in log.read_text()  # no worker ran over its time limit


def test_gunicorns_own_answers_carry_the_headers_and_reasons_and_its_log_no_query(corpus_and_settings, tmp_path):
    """What gunicorn answers itself has the app's security headers and the status's own
    reason (its 501 said "Bad Request"); with SEARCH_LOG_QUERIES=false its log lines name
    no query string either (issue 38, 9)."""
    _, settings = corpus_and_settings
    log = tmp_path / "server.log"
    proc, url = start_server(Path(settings.index_dir), log, SEARCH_LOG_QUERIES="false")
    try:
        wait_ready(proc, url, log)
        with contextlib.closing(_raw(url, b"GET /search?q=secret12345 HTTP/1.1 junk\r\nHost: a\r\n\r\n")) as s:
            head = _answer(s, 5).split(b"\r\n\r\n")[0].decode("latin-1")
        assert head.startswith("HTTP/1.1 400 Bad Request")
        for header in ("X-Content-Type-Options: nosniff", "Referrer-Policy: no-referrer", "X-Frame-Options: DENY"):
            assert header in head
        coding = b"POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: bogus, chunked\r\n\r\n0\r\n\r\n"
        with contextlib.closing(_raw(url, coding)) as s:
            answer = _answer(s, 5)
        assert answer.startswith(b"HTTP/1.1 501 Not Implemented"), answer[:300]
    finally:
        stop_server(proc)
    text = log.read_text()
    assert "Invalid request from ip=" in text and "secret12345" not in text


def test_a_sigterm_during_start_up_leaves_no_metrics_folder(corpus_and_settings, tmp_path):
    """serve makes its workers' metrics folder first thing; a SIGTERM before gunicorn runs
    used to end the process on the spot and leave it (issue 38, 9)."""
    import os
    import signal
    import subprocess
    import sys

    from search_service.devtools.ports import free_port
    from tests.helpers import ROOT

    _, settings = corpus_and_settings
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(PYTHONPATH=str(ROOT), TMPDIR=str(temp))
    argv = [sys.executable, "-m", "search_service.cli", "serve", "--index", settings.index_dir]
    proc = subprocess.Popen([*argv, "--port", str(free_port())], env=env, stderr=subprocess.DEVNULL)
    began = time.monotonic()
    while not list(temp.glob("search-service-metrics-*")) and time.monotonic() - began < 20:
        time.sleep(0.01)
    assert list(temp.glob("search-service-metrics-*")), "serve made no metrics folder"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert not list(temp.glob("search-service-metrics-*"))


def test_a_worker_that_exits_leaves_the_metrics_folder_to_the_others(server):
    """A worker is forked inside serve and, ended by gunicorn, leaves through serve's cleanup
    too: it removed the metrics folder every worker writes, and /metrics answered 500."""
    import os
    import signal

    import psutil

    url, _, _ = server
    master = next(
        p for p in psutil.process_iter(["cmdline"]) if url.rsplit(":", 1)[1] in " ".join(p.info["cmdline"] or [])
    )
    began = time.monotonic()
    while len(master.children()) < 2 and time.monotonic() - began < 20:
        time.sleep(0.1)
    workers = master.children()
    assert len(workers) == 2
    os.kill(workers[0].pid, signal.SIGTERM)  # gunicorn replaces it
    began = time.monotonic()
    while {w.pid for w in master.children()} & {workers[0].pid} or len(master.children()) < 2:
        assert time.monotonic() - began < 20
        time.sleep(0.1)
    for _ in range(6):
        assert requests.get(url + "/metrics", timeout=5).status_code == 200
    before = _search_count(url)
    for i in range(10):
        assert requests.get(url + "/search", params={"q": f"医保卡 {i}"}, timeout=5).status_code == 200
    assert _search_count(url) - before == 10


def test_silent_and_trickling_sockets_do_not_stall_serve(server):
    """200 connections that send nothing and 50 that trickle a header line a second (each
    used to hold a thread: a silent one for seconds, a trickling one for as long as it
    trickled, and together every thread of both workers) cost normal requests nothing: the
    workers' event loops collect heads, threads only parse whole ones (issue 38, 1)."""
    import socket

    url, _, _ = server
    host, port = url.split("//")[1].split(":")
    silent = [socket.create_connection((host, int(port))) for _ in range(200)]
    trickling = [socket.create_connection((host, int(port))) for _ in range(50)]
    stop = threading.Event()

    def trickle():
        for s in trickling:
            s.sendall(b"GET /search?q=x HTTP/1.1\r\nHost: a\r\n")
        while not stop.wait(1.0):
            for s in trickling:
                with contextlib.suppress(OSError):
                    s.sendall(b"X-Slow: 1\r\n")

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    waits = []
    try:
        time.sleep(1.0)
        for i in range(40):
            began = time.monotonic()
            r = requests.get(url + "/search", params={"q": "医保卡", "page": i % 3 + 1}, timeout=5)
            waits.append(time.monotonic() - began)
            assert r.status_code == 200
    finally:
        stop.set()
        feeder.join()
        for s in [*silent, *trickling]:
            s.close()
    assert max(waits) < 2.0, sorted(waits)[-5:]


@pytest.fixture
def quick_head_server(corpus_and_settings, tmp_path):
    """A server giving clients 1 s to send a request's head, and 1 s for its body."""
    _, settings = corpus_and_settings
    log = tmp_path / "server.log"
    proc, url = start_server(Path(settings.index_dir), log, SEARCH_HEAD_SECONDS="1", SEARCH_BODY_SECONDS="1")
    wait_ready(proc, url, log)
    yield url
    stop_server(proc)


def test_a_head_or_body_not_sent_in_time_is_408_and_a_silent_connection_closed(quick_head_server):
    url = quick_head_server
    began = time.monotonic()
    half_head = _raw(url, b"GET /search?q=x HTTP/1.1\r\nHost: a\r\n")
    half_body = _raw(
        url,
        b"POST /search HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n" + b'{"q":',
    )
    silent = _raw(url, b"")
    for s, what in ((half_head, b"request line and headers"), (half_body, b"request body")):
        answer = _answer(s, 5)
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout", answer
        assert b"request_timeout" in answer and what in answer and b"X-Content-Type-Options: nosniff" in answer
    silent.settimeout(5)
    assert silent.recv(100) == b""  # closed, nothing said
    assert time.monotonic() - began < 4
    # A whole request sent in pieces, a body of announced length and two pipelined
    # requests are answered as ever.
    s = _raw(url, b"POST /search HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n")
    time.sleep(0.3)
    s.sendall(b'Content-Length: 12\r\n\r\n{"q": ')
    time.sleep(0.3)
    s.sendall(b'"xyz"}')
    assert _answer(s, 5).split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    s.close()
    two = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n" * 2
    s = _raw(url, two)
    s.settimeout(5)
    got = b""
    while got.count(b"HTTP/1.1 200 OK") < 2:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    s.close()
    for s in (half_head, half_body, silent):
        s.close()


def test_slow_bodies_hold_no_thread(server):
    """24 chunked and 24 Content-Length bodies trickled a byte at a time (more than both
    workers' threads: a thread used to read each body for up to SEARCH_BODY_SECONDS) cost
    normal requests nothing: the event loop collects a body before a thread gets it."""
    url, _, _ = server
    chunked = (
        b"POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    )
    sized = b"POST /search HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    slow = [_raw(url, chunked + b"1\r\n{\r\n") for _ in range(24)] + [_raw(url, sized + b"{") for _ in range(24)]
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.5):
            for i, s in enumerate(slow):
                with contextlib.suppress(OSError):
                    s.sendall(b"1\r\n \r\n" if i < 24 else b" ")

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        time.sleep(0.5)
        for _ in range(20):
            began = time.monotonic()
            r = requests.post(url + "/search", json={"q": "医保卡"}, timeout=5)
            assert r.status_code == 200 and time.monotonic() - began < 2.0
    finally:
        stop.set()
        feeder.join()
        for s in slow:
            s.close()


def test_a_body_in_pieces_is_answered_whole_and_one_too_large_413(server):
    url, _, _ = server
    head = b"POST /search HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    s = _raw(url, head + b'7\r\n{"q": "\r\n')
    for piece in (b"9\r\n", "医保卡".encode(), b'\r\n2\r\n"}\r\n', b"0\r\n", b"\r\n"):
        time.sleep(0.1)
        s.sendall(piece)
    answer = _answer(s, 5)
    assert answer.split(b"\r\n")[0] == b"HTTP/1.1 200 OK" and b'"total"' in answer
    s.close()
    for big in (
        head + b"11170\r\n" + b"x" * 70_000,
        head.replace(b"Transfer-Encoding: chunked", b"Content-Length: 70000") + b"x" * 70_000,
    ):
        s = _raw(url, big)
        answer = _answer(s, 5)
        assert answer.split(b"\r\n")[0].split()[1] == b"413" and b"request_too_large" in answer, answer[:300]
        s.close()
    s = _raw(url, head + b"zz\r\n{}\r\n0\r\n\r\n")
    assert _answer(s, 5).split(b"\r\n")[0].split()[1] == b"400"
    s.close()
