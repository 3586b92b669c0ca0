"""A local OpenSearch cluster for tests and for trying the opensearch engine:
N nodes, each its own JVM (``opensearch/``'s launcher), on loopback ports.

Build the launcher first (``bash scripts/run.sh`` does: ``mvn -q -f opensearch/pom.xml package``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from search_service.devtools.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "opensearch"


class ClusterError(RuntimeError):
    pass


class LocalCluster:
    """``nodes`` OpenSearch nodes with data under ``home``; HTTP on ``http_ports``."""

    def __init__(
        self,
        home: Path,
        nodes: int = 2,
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
        for i in range(len(self.names)):
            self.start_node(i)
        self.wait_healthy(len(self.names), timeout)

    def start_node(self, i: int) -> None:
        java = shutil.which("java") or "java"
        home = self.home / self.names[i]
        home.mkdir(parents=True, exist_ok=True)
        command = [
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
            self.procs[i] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

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
