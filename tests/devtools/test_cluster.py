"""The local cluster launcher (`bash scripts/run.sh opensearch`) as an operator meets it:
a node dies, the launcher is SIGKILLed, it is started again (issue 38, 7)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from search_service.devtools.ports import port_in_use
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _base_port() -> int:
    """An HTTP port p with p, p+1, p+2 and the transport ports p+100.. free."""
    for p in range(21200, 29000, 7):
        if not any(port_in_use(q) for q in (p, p + 1, p + 2, p + 100, p + 101, p + 102)):
            return p
    raise AssertionError("no free ports")


def _launch(data: Path, base: int, log: Path) -> subprocess.Popen[str]:
    with open(log, "a") as out:  # the launcher keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "opensearch.py"),
                "--nodes",
                "3",
                "--data",
                str(data),
                "--heap-mb",
                "320",
            ],
            env=dict(os.environ, OPENSEARCH_HTTP_PORT=str(base), PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )


def _nodes(data: Path) -> dict[str, int]:
    """The JVMs of the cluster under ``data``: node name -> pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"searchservice.LocalNode" in args and str(data).encode() in b" ".join(args):
            found[args[args.index(b"--name") + 1].decode()] = int(entry.name)
    return found


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cluster/health", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


def _until(what, seconds: float, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s")


def test_the_launcher_keeps_survivors_restarts_the_dead_and_takes_its_nodes_along(tmp_path):
    data, log = tmp_path / "data", tmp_path / "launcher.log"
    base = _base_port()
    launcher = _launch(data, base, log)
    try:
        assert launcher.stdout is not None
        assert launcher.stdout.readline().startswith("OpenSearch is up: "), log.read_text()
        nodes = _nodes(data)
        assert sorted(nodes) == ["node-0", "node-1", "node-2"]
        # One node dies: the others go on answering (the launcher used to stop them all).
        os.kill(nodes["node-1"], signal.SIGKILL)
        began = time.monotonic()
        while time.monotonic() - began < 5:
            assert _health(base) is not None and _health(base + 2) is not None
            time.sleep(0.25)
        assert launcher.poll() is None
        # ... and it is started again, and joins.
        _until(lambda: (_health(base) or {}).get("number_of_nodes") == 3, 240)
        text = log.read_text()
        assert "node-1 exited (-9); the others go on; restarting it" in text and "node-1 started again" in text
        nodes = _nodes(data)
        # The launcher SIGKILLed: its JVMs end with it (they used to stay, as orphans).
        launcher.kill()
        launcher.wait()
        _until(lambda: not _nodes(data), 60)
        assert not any(port_in_use(p) for p in (base, base + 1, base + 2))
    finally:
        launcher.kill()
        launcher.wait()
        launcher.stdout.close()
        for pid in _nodes(data).values():
            os.kill(pid, signal.SIGKILL)


def test_the_launcher_refuses_ports_in_use(tmp_path):
    """Another process on the cluster's ports (an earlier cluster's node): exit 1 and say so;
    it used to say "OpenSearch is up", talking to the other process, and then exit 1."""
    base = _base_port()
    with socket.create_server(("127.0.0.1", base + 1)):
        launcher = _launch(tmp_path / "data", base, tmp_path / "launcher.log")
        out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 1 and "OpenSearch is up" not in out
    assert f"port {base + 1} of 127.0.0.1 is in use" in (tmp_path / "launcher.log").read_text()
    assert not _nodes(tmp_path / "data")
