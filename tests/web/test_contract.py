"""The OpenAPI document against a live server: a schemathesis run, every check on,
finds no request the document and the server disagree about."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from search_service.settings import Settings
from tests.helpers import TRADITIONAL_SEED, engine_env
from tests.web.servers import start_server, stop_server, wait_ready

pytestmark = pytest.mark.slow
KEY = "contract-key"


def schemathesis(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # Real ids for the operations that read one document or passage (else they only see 404s).
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\ndoc_id = "{TRADITIONAL_SEED}"\npassage_id = "{TRADITIONAL_SEED}#3"\n', "utf-8")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        url + "/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "40",
        "--seed",
        "7",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--report-dir",
        str(tmp_path / "report"),
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)


def run_against_server(settings: Settings, tmp_path: Path, env: dict[str, str], *extra: str) -> None:
    log = tmp_path / "server.log"
    proc, url = start_server(Path(settings.index_dir), log, 2, **{**engine_env(settings), **env})
    try:
        wait_ready(proc, url, log, headers={"X-API-Key": KEY} if env else None)
        result = schemathesis(url, tmp_path, *extra)
    finally:
        stop_server(proc)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout or "No issues found" in result.stdout
    assert "Traceback" not in log.read_text()


def test_the_api_matches_its_document_with_keys(seed_settings, tmp_path):
    """With API keys: also that every operation but /health and the icon refuses a request without one."""
    run_against_server(seed_settings, tmp_path, {"SEARCH_API_KEYS": KEY}, "--header", f"X-API-Key: {KEY}")


def test_the_api_matches_its_document_without_keys(whoosh_seed_settings, tmp_path):
    run_against_server(whoosh_seed_settings, tmp_path, {})
