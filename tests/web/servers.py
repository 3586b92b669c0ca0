"""Helpers to run `search-service serve` on a free loopback port in tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from search_service.devtools.ports import free_port
from tests.helpers import ROOT


def start_server(index_dir: Path, log: Path, workers: int = 2, **env_extra: Any):
    """Start `search-service serve`; its output goes to ``log``."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), SEARCH_RELOAD_SECONDS="0.5", **env_extra)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "search_service.cli",
                "serve",
                "--index",
                str(index_dir),
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(proc, url: str, log: Path, timeout: float = 30, headers: dict[str, str] | None = None) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if requests.get(url + "/search", params={"q": "医保卡"}, headers=headers, timeout=2).status_code == 200:
                return time.monotonic() - began
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("server did not start")
