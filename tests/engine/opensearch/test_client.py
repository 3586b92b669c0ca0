"""The cluster client against fake nodes on loopback (no cluster needed): one time budget
a call, and an outage answered at once, logged once, checked with backoff (issue 38, 6)."""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opensearchpy import exceptions as ox

from search_service.engine.opensearch.client import ClusterDown, Outage, make_client, unavailable
from search_service.settings import Settings

LOGGER = "search_service.engine.opensearch.client"


class HungNode:
    """A node that accepts connections and never answers (a JVM stopped with SIGSTOP)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"cluster_name": "fake", "version": {"number": "2.19.0"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hung_nodes():
    nodes = [HungNode() for _ in range(3)]
    yield nodes
    for node in nodes:
        node.close()


def _client(urls, timeout=1.0, retry=10.0):
    return make_client(Settings(opensearch_urls=",".join(urls), opensearch_timeout=timeout,
                                opensearch_retry_seconds=retry))


def test_a_call_to_hung_nodes_fails_within_one_budget_not_one_per_attempt(hung_nodes):
    """Three nodes that never answer: each attempt used to get the whole timeout (four
    attempts of 1 s); the call now ends within its budget, with a timeout."""
    client = _client([f"http://127.0.0.1:{n.port}" for n in hung_nodes], timeout=1.0)
    began = time.monotonic()
    with pytest.raises(ox.ConnectionTimeout) as caught:
        client.info()
    assert time.monotonic() - began < 1.6
    assert unavailable(caught.value).message == "the OpenSearch cluster did not answer in time"


def test_after_a_hung_node_another_answers_within_the_budget(hung_nodes):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = _client([f"http://127.0.0.1:{hung_nodes[0].port}", f"http://127.0.0.1:{server.server_port}"])
        for _ in range(4):  # the first node is tried first at least once (round robin)
            began = time.monotonic()
            assert client.info()["cluster_name"] == "fake"
            assert time.monotonic() - began < 1.0
    finally:
        server.shutdown()
        server.server_close()
    assert hung_nodes[0].accepted


def test_an_outage_is_answered_at_once_logged_once_and_checked_with_backoff(hung_nodes, caplog):
    client = _client([f"http://127.0.0.1:{n.port}" for n in hung_nodes], timeout=0.5)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with pytest.raises(ox.ConnectionTimeout):
        client.info()
    reached = sum(len(n.accepted) for n in hung_nodes)
    began = time.monotonic()
    for _ in range(200):
        with pytest.raises(ClusterDown) as caught:
            client.info()
    assert time.monotonic() - began < 0.3  # no call waited for a node
    assert sum(len(n.accepted) for n in hung_nodes) == reached  # nor reached one
    assert "is unavailable: no node answered in time; the next check in" in unavailable(caught.value).message
    ours = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in ours] == ["ERROR"]
    assert "is unavailable (no node answered in time)" in ours[0].getMessage()
    # opensearch-py's own line (with a traceback) for each failed attempt is gone.
    assert not [r for r in caplog.records if r.exc_info]


def test_the_first_call_after_the_backoff_checks_and_ends_the_outage(caplog):
    """A cluster that refused connections starts answering: the check after the backoff
    reaches it, the outage ends and that is logged once."""
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there: refused
    client = _client([f"http://127.0.0.1:{port}"], timeout=1.0)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with pytest.raises(ox.ConnectionError) as caught:
        client.info()
    assert not isinstance(caught.value, ClusterDown)
    server = ThreadingHTTPServer(("127.0.0.1", port), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ClusterDown):
            client.info()  # within the backoff: not asked
        time.sleep(Outage.FIRST + 0.05)
        assert client.info()["cluster_name"] == "fake"
        assert client.info()["cluster_name"] == "fake"
    finally:
        server.shutdown()
        server.server_close()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    assert [level for level, _ in messages] == ["ERROR", "WARNING"]
    assert messages[1][1].startswith("the OpenSearch cluster answers again, after")


def test_checks_back_off_doubling_up_to_the_longest_wait():
    now = [100.0]
    outage = Outage(longest=4.0, clock=lambda: now[0])
    outage.admit()  # up: let through
    waits = []
    outage.failed("down")
    for _ in range(6):
        began = now[0]
        while True:
            try:
                outage.admit()
                break
            except ClusterDown:
                now[0] += 0.25
        waits.append(now[0] - began)
        outage.failed("still down")
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    # While a check is out, the other calls still fail at once.
    now[0] += 10
    outage.admit()
    with pytest.raises(ClusterDown):
        outage.admit()
    outage.answered()
    outage.admit()
    assert outage.since is None
