"""A local OpenSearch cluster for tests and for trying the opensearch engine:
N nodes, each its own JVM (``opensearch/``'s launcher), on loopback ports.

The JVMs end with the process that started them, however it ends (SIGKILL included:
Linux's parent-death signal, set by util-linux's ``setpriv``), so a relaunch never
finds the last run's nodes on its ports; a node that stops is started again by
:meth:`LocalCluster.supervise` while the others go on serving.

Build the launcher first (``bash scripts/run.sh`` does: ``mvn -q -f opensearch/pom.xml package``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from search_service.devtools.ports import free_port, port_in_use

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "opensearch"
# A node gets SIGTERM when the thread that started it ends, however it ends (util-linux's
# setpriv sets Linux's parent-death signal, which the exec of java keeps).
_DIE_WITH_US = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []


class ClusterError(RuntimeError):
    pass


class LocalCluster:
    """``nodes`` OpenSearch nodes with data under ``home``; HTTP on ``http_ports``."""

    def __init__(
        self,
        home: Path,
        nodes: int = 3,
        http_ports: list[int] | None = None,
        transport_ports: list[int] | None = None,
        heap_mb: int = 384,
        name: str = "search-service-local",
    ) -> None:
        self.home = Path(home)
        self.names = [f"node-{i}" for i in range(nodes)]
        self.http_ports = http_ports or [free_port() for _ in range(nodes)]
        self.transport_ports = transport_ports or [free_port() for _ in range(nodes)]
        self.heap_mb = heap_mb
        self.cluster_name = name
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.http_ports]

    def classpath(self) -> str:
        classes, lib = LAUNCHER / "target" / "classes", LAUNCHER / "target" / "lib"
        if not (classes / "searchservice" / "LocalNode.class").is_file() or not lib.is_dir():
            raise ClusterError(f"the OpenSearch launcher is not built: mvn -q -f {LAUNCHER / 'pom.xml'} package")
        return f"{classes}{os.pathsep}{lib}/*"

    def start(self, timeout: float = 180) -> None:
        """Every node, once the cluster's ports are free (ClusterError when one is taken)."""
        taken = [p for p in [*self.http_ports, *self.transport_ports] if port_in_use(p)]
        if taken:
            raise ClusterError(
                f"port {', '.join(map(str, taken))} of 127.0.0.1 is in use (another cluster still running?)"
            )
        for i in range(len(self.names)):
            self.start_node(i)
        self.wait_healthy(len(self.names), timeout)

    def supervise(self, stop: threading.Event, say: Callable[[str], None], pause: float = 5.0, tries: int = 3) -> None:
        """Until ``stop``: a node that exits is started again after ``pause`` seconds while the
        others go on serving; one that exits ``tries`` times in a row within a minute of its
        start is left stopped (its node.log says why)."""
        started = [time.monotonic()] * len(self.names)
        failures = [0] * len(self.names)
        due: dict[int, float] = {}
        while not stop.wait(0.5):
            now = time.monotonic()
            for i, proc in enumerate(self.procs):
                if proc is None or proc.poll() is None:
                    continue
                self.procs[i] = None
                failures[i] = failures[i] + 1 if now - started[i] < 60 else 1
                log = self.home / self.names[i] / "node.log"
                if failures[i] >= tries:
                    say(f"{self.names[i]} exited ({proc.returncode}) {tries} times in a row; left stopped, see {log}")
                    continue
                say(f"{self.names[i]} exited ({proc.returncode}); the others go on; restarting it in {pause:g} s")
                due[i] = now + pause
            for i, when in list(due.items()):
                if now >= when:
                    del due[i]
                    self.start_node(i)
                    started[i] = now
                    say(f"{self.names[i]} started again")

    def start_node(self, i: int) -> None:
        java = shutil.which("java") or "java"
        home = self.home / self.names[i]
        home.mkdir(parents=True, exist_ok=True)
        command = [
            *_DIE_WITH_US,
            java,
            f"-Xms{self.heap_mb}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseSerialGC",
            "-Xss1m",
            "-Djava.awt.headless=true",
            "-Dlog4j2.disable.jmx=true",
            "-Dfile.encoding=UTF-8",
            "-Dopensearch.networkaddress.cache.ttl=60",
            "-cp",
            self.classpath(),
            "searchservice.LocalNode",
            "--name",
            self.names[i],
            "--home",
            str(home),
            "--cluster",
            self.cluster_name,
            "--http-port",
            str(self.http_ports[i]),
            "--transport-port",
            str(self.transport_ports[i]),
            "--seeds",
            ",".join(f"127.0.0.1:{p}" for p in self.transport_ports),
            "--cluster-managers",
            ",".join(self.names),
        ]
        with open(home / "node.log", "ab") as log:  # the node keeps its own copy of the descriptor
            self.procs[i] = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop_node(self, i: int, timeout: float = 30) -> None:
        proc = self.procs[i]
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs[i] = None

    def stop(self) -> None:
        for i in range(len(self.names)):
            self.stop_node(i)

    def health(self, i: int | None = None) -> dict:
        for port in [self.http_ports[i]] if i is not None else self.http_ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cluster/health", timeout=2) as r:
                    return json.loads(r.read())
            except (OSError, urllib.error.URLError, ValueError):
                continue
        raise ClusterError("no node answers")

    def wait_healthy(self, nodes: int, timeout: float = 180, status: tuple[str, ...] = ("green", "yellow")) -> None:
        """Until ``nodes`` nodes have joined and the cluster is usable; ClusterError after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for i, proc in enumerate(self.procs):
                if proc is not None and proc.poll() is not None:
                    log = (self.home / self.names[i] / "node.log").read_text("utf-8", "replace")[-3000:]
                    raise ClusterError(f"{self.names[i]} exited ({proc.returncode}):\n{log}")
            try:
                h = self.health()
                last = f"{h.get('number_of_nodes')} nodes, {h.get('status')}"
                if h.get("number_of_nodes", 0) >= nodes and h.get("status") in status:
                    return
            except ClusterError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise ClusterError(f"the cluster did not come up in {timeout:.0f} s ({last})")

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
