"""The deployment example, run here: nginx (Debian's package, deploy/nginx.conf) in front
of `search-service serve` on loopback ports, and the systemd unit's command line."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from search_service.devtools.ports import free_port
from tests.helpers import ROOT, TRADITIONAL_SEED, assert_error
from tests.web.servers import start_server, stop_server, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.deploy]
NGINX = "/usr/sbin/nginx"


def nginx_config(tmp: Path, app_port: int, proxy_port: int) -> Path:
    """deploy/nginx.conf as shipped, on these ports, inside a main config of its own files."""
    site = (ROOT / "deploy" / "nginx.conf").read_text("utf-8")
    assert "127.0.0.1:8000" in site and "listen 127.0.0.1:8080" in site
    (tmp / "site.conf").write_text(
        site.replace("127.0.0.1:8000", f"127.0.0.1:{app_port}").replace(
            "listen 127.0.0.1:8080", f"listen 127.0.0.1:{proxy_port}"
        ),
        "utf-8",
    )
    temp = "".join(f"{kind}_temp_path {tmp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # its workers write their temp files in tmp
    main = tmp / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\naccess_log {tmp}/access.log;\n{temp}"
        f"include {tmp}/site.conf;\n}}\n",
        "utf-8",
    )
    return main


def from_address(address: str, port: int, path: str, **headers: str) -> tuple[int, dict]:
    """GET ``path`` from the loopback ``address`` (127.0.0.x) as a client there would."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(address, 0))
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.fixture
def proxied(whoosh_seed_settings, tmp_path):
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is required: bash scripts/run.sh test installs it")
    log = tmp_path / "server.log"
    app, app_url = start_server(
        Path(whoosh_seed_settings.index_dir), log, workers=1, SEARCH_TRUSTED_PROXIES="1", SEARCH_RATE_LIMIT="5/minute"
    )
    proxy_port = free_port()
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    config = nginx_config(nginx_dir, int(app_url.rsplit(":", 1)[1]), proxy_port)
    with open(nginx_dir / "stderr.log", "wb") as err:
        nginx = subprocess.Popen(
            [NGINX, "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log"), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_ready(app, app_url, log)
        url = f"http://127.0.0.1:{proxy_port}"
        for _ in range(100):
            try:
                requests.get(url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                assert nginx.poll() is None, (nginx_dir / "stderr.log").read_text()
                time.sleep(0.05)
        yield url, proxy_port, log
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        stop_server(app)


def test_search_and_the_page_through_nginx(proxied):
    url, _, _ = proxied
    r = requests.get(url + "/search", params={"q": "医保卡被锁了怎么解锁", "size": 3}, timeout=5)
    assert r.status_code == 200 and r.json()["hits"][0]["doc_id"] == TRADITIONAL_SEED
    page = requests.get(url + "/", params={"q": "医保卡"}, timeout=5)
    assert page.status_code == 200 and "<mark>" in page.text
    assert requests.get(url + "/static/style.css", timeout=5).status_code == 200
    # The service's own limits answer in its shape, not nginx's.
    big = requests.post(url + "/search", data=b"x" * 100_000, headers={"Content-Type": "application/json"}, timeout=5)
    assert_error(big, 413, "request_too_large")


def test_the_client_address_passes_through_for_logs_and_rate_limits(proxied):
    _, port, log = proxied
    # A client cannot choose its address: nginx replaces what it sends.
    status, _ = from_address(
        "127.0.0.2",
        port,
        "/search?q=%E5%8C%BB%E4%BF%9D%E5%8D%A1",
        **{"X-Request-ID": "via-nginx", "X-Forwarded-For": "6.6.6.6"},
    )
    assert status == 200
    for _ in range(50):
        lines = [json.loads(line) for line in log.read_text().splitlines() if '"via-nginx"' in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines and lines[0]["client"] == "127.0.0.2"
    # Each client has its own allowance (5 a minute): 127.0.0.2 runs out, 127.0.0.3 does not.
    statuses = [from_address("127.0.0.2", port, "/search?q=%E5%8C%BB%E4%BF%9D%E5%8D%A1")[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    status, body = from_address("127.0.0.2", port, "/search?q=%E5%8C%BB%E4%BF%9D%E5%8D%A1")
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert from_address("127.0.0.3", port, "/search?q=%E5%8C%BB%E4%BF%9D%E5%8D%A1")[0] == 200


def test_the_systemd_unit_runs_the_service_as_documented():
    unit = (ROOT / "deploy" / "search-service.service").read_text("utf-8")
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1).split()
    assert exec_start[0] == "/opt/search-service/.venv/bin/search-service" and exec_start[1] == "serve"
    # The options it passes are the serve command's own.
    command = [str(ROOT / ".venv" / "bin" / "search-service"), *exec_start[1:], "--help"]
    assert subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).returncode == 0
    for setting in re.findall(r"^Environment=(SEARCH_[A-Z_]+)=", unit, re.M):
        assert (
            subprocess.run(
                [command[0], "settings"], capture_output=True, text=True, timeout=60, check=False
            ).stdout.count(setting)
            == 1
        ), setting
    if shutil.which("systemd-analyze"):  # the unit's syntax, where systemd's tools are installed
        checked = subprocess.run(
            ["systemd-analyze", "verify", str(ROOT / "deploy" / "search-service.service")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert all("is not executable" in line or not line.strip() for line in checked.stderr.splitlines()), (
            checked.stderr
        )
