import json
import logging

import pytest

from search_service.errors import ConfigError
from search_service.settings import Settings
from search_service.web.app import create_app
from tests.helpers import TRADITIONAL_SEED, assert_error

KEY = "s3cret-key-1"


@pytest.fixture
def keyed(seed_settings, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# keys\n{KEY}\nother-key\n")
    return create_app({**seed_settings.__dict__, "api_keys": f"@{keys}"}).test_client()


def test_api_keys_guard_every_endpoint_but_health(keyed):
    for path in [
        "/search?q=医保卡",
        "/documents/x",
        "/analyze?text=x",
        "/stats",
        "/openapi.json",
        "/metrics",
        "/nowhere",
    ]:
        r = keyed.get(path)
        assert_error(r, 401, "unauthorized")
    # The page is for people, who cannot send a key: an HTML page says one is needed.
    page = keyed.get("/?q=医保卡")
    assert (
        page.status_code == 401 and page.mimetype == "text/html" and "SEARCH_PUBLIC_PAGE" in page.get_data(as_text=True)
    )
    assert keyed.get("/health").status_code == 200
    with keyed.get("/static/style.css") as css:
        assert css.status_code == 200
    assert keyed.get("/search?q=医保卡", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyed.get("/search?q=医保卡", headers={"X-API-Key": "other-key"}).status_code == 200
    assert_error(keyed.get("/search?q=医保卡", headers={"X-API-Key": KEY + "x"}), 401, "unauthorized")
    assert_error(keyed.get("/search?q=医保卡", headers={"Authorization": "Bearer "}), 401, "unauthorized")
    assert_error(keyed.get("/search?q=医保卡", headers={"X-API-Key": "医保"}), 401, "unauthorized")
    # every credential presented must hold: a wrong bearer next to a good X-API-Key is refused
    assert_error(
        keyed.get("/search?q=医保卡", headers={"Authorization": "Bearer wrong", "X-API-Key": KEY}), 401, "unauthorized"
    )


def test_no_keys_configured_means_open(client):
    assert client.get("/search?q=医保卡").status_code == 200


def test_one_log_line_per_request_with_request_id_and_no_key(seed_settings, caplog):
    app = create_app({**seed_settings.__dict__, "api_keys": KEY, "log_queries": "false"})
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="search_service.access"):
        r = client.get("/search?q=医保卡", headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "search_service.access"]
    assert lines == [
        {
            "request_id": "abc-123",
            "client": "127.0.0.1",
            "method": "GET",
            "path": "/search",
            "status": 200,
            "ms": lines[0]["ms"],
        }
    ]
    assert KEY not in caplog.text and "医保卡" not in caplog.text


def test_request_ids_are_generated_when_missing_or_unsafe(client):
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/health", headers={"X-Request-ID": "bad id <x>"}).headers["X-Request-ID"] != "bad id <x>"


def test_security_headers(client):
    api = client.get("/search?q=医保卡")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    page = client.get("/?q=医保卡")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp.replace("default-src", "")


@pytest.mark.parametrize(
    "path",
    [
        "/documents/../../etc/passwd",
        "/documents/..%2F..%2Fetc%2Fpasswd",
        "/passages/..%2f..%2fetc%2fpasswd%231",
        "/documents/%2e%2e/%2e%2e/etc/passwd",
        "/static/../setup.cfg",
        "/static/..%2f..%2fsetup.cfg",
    ],
)
def test_path_traversal_reaches_nothing(client, path):
    with client.get(path) as r:
        assert r.status_code == 404
        assert b"root:" not in r.data and b"[metadata]" not in r.data


def test_rate_limit_answers_429_with_retry_after(seed_settings):
    client = create_app({**seed_settings.__dict__, "rate_limit": "3/minute"}).test_client()
    statuses = [client.get("/search?q=医保卡").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    r = client.get("/search?q=医保卡")
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) > 0
    assert client.get("/health").status_code == 200  # probes are never limited


def test_the_rate_limit_is_one_allowance_per_client_across_routes(seed_settings):
    client = create_app({**seed_settings.__dict__, "rate_limit": "3/minute"}).test_client()
    statuses = [
        client.get("/search?q=医保卡").status_code,
        client.get("/?q=医保卡").status_code,
        client.get("/documents/none").status_code,
        client.get("/search?q=银行").status_code,
    ]
    assert statuses == [200, 200, 404, 429]


def test_request_time_limit_is_gunicorns_worker_timeout():
    from gunicorn.workers.gthread import ThreadWorker

    from search_service.cli import build_parser
    from search_service.web.serve import gunicorn_options

    args = build_parser().parse_args(["serve", "--timeout", "7", "--workers", "3"])
    options = gunicorn_options(args.host, args.port, args.workers, args.timeout)
    assert options["timeout"] == 7 and options["workers"] == 3
    # threads, so that slow clients do not hold a worker; the time limit is kept by serve.Deadline
    assert issubclass(options["worker_class"], ThreadWorker) and options["threads"] >= 2
    assert options["bind"] == "127.0.0.1:8000" and options["preload_app"] is True


@pytest.mark.parametrize(
    "value, reason",
    [
        (",", "holds no key"),
        ("   ", "holds no key"),
        (" , ,", "holds no key"),
        ("@{empty}", "holds no key"),
        ("@{comments}", "holds no key"),
        ("@{missing}", "cannot read"),
    ],
)
def test_a_key_setting_that_holds_no_key_refuses_to_start(tmp_path, capsys, value, reason):
    from search_service.cli import main

    (tmp_path / "empty").write_text("", encoding="utf-8")
    (tmp_path / "comments").write_text("# one\n   # indented\n\n", encoding="utf-8")
    value = value.format(empty=tmp_path / "empty", comments=tmp_path / "comments", missing=tmp_path / "missing")
    with pytest.raises(ConfigError, match=reason):
        create_app({"api_keys": value})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEARCH_API_KEYS", value)
        assert main(["serve", "--index", str(tmp_path / "index"), "--port", "1"]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err


def test_an_indented_comment_in_a_keys_file_is_not_a_key(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("  # note\nreal-key\n", encoding="utf-8")
    assert Settings.from_env(api_keys=f"@{keys}").api_key_list() == ("real-key",)


def test_the_icon_needs_no_key(keyed):
    r = keyed.get("/favicon.ico")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert_error(keyed.get("/search?q=医保卡"), 401, "unauthorized")


def test_a_public_page_needs_no_key_while_the_api_still_does(seed_settings):
    client = create_app({**seed_settings.__dict__, "api_keys": KEY, "public_page": True}).test_client()
    page = client.get("/?q=医保卡")
    assert page.status_code == 200 and "<mark>" in page.get_data(as_text=True)
    doc = client.get(f"/documents/{TRADITIONAL_SEED}?q=医保卡", headers={"Accept": "text/html"})
    assert doc.status_code == 200 and "<mark>醫保卡</mark>" in doc.get_data(as_text=True)
    for path in ["/search?q=医保卡", f"/documents/{TRADITIONAL_SEED}", "/stats", "/metrics"]:
        assert_error(client.get(path), 401, "unauthorized")  # JSON clients still need a key
