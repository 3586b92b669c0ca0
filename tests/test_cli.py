"""The `search-service` command: one exit code per outcome, mapped from the core's errors in one place."""

from __future__ import annotations

import dataclasses

import pytest

from search_service import cli
from search_service.errors import BuildError, ConfigError, IndexLocked, IndexUnavailable, InvalidRequest
from tests.helpers import write_corpus


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_each_core_error_has_its_documented_exit_code():
    assert cli.exit_code(InvalidRequest("x")) == 64
    assert cli.exit_code(ConfigError("x")) == 78
    assert cli.exit_code(IndexLocked("x")) == 3
    assert cli.exit_code(BuildError("x")) == 1
    assert cli.exit_code(IndexUnavailable("x")) == 1


def test_a_bad_setting_exits_78_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEARCH_WORKERS", "abc")
    code, _out, err = run(capsys, "reindex", "--corpus", str(tmp_path), "--index", str(tmp_path / "index"))
    assert code == 78
    assert err.strip() == "search-service reindex: setting SEARCH_WORKERS='abc' is not an integer"
    monkeypatch.setenv("SEARCH_WORKERS", "0")
    monkeypatch.setenv("SEARCH_ENGINE", "lucene")
    code, _, err = run(capsys, "search", "医保卡", "--index", str(tmp_path / "index"))
    assert code == 78 and "setting SEARCH_ENGINE='lucene' is not one of whoosh, opensearch" in err


def test_an_empty_query_is_a_usage_error_not_files_skipped(tmp_path, capsys):
    code, _, err = run(capsys, "search", "", "--index", str(tmp_path / "index"))
    assert code == 64 and "parameter 'q' is required" in err


def test_search_without_an_index_fails_with_1(tmp_path, capsys):
    code, _, err = run(capsys, "search", "医保卡", "--index", str(tmp_path / "none"))
    assert code == 1 and "run `search-service reindex` first" in err


def test_search_prints_the_apis_json(tmp_path, make_settings, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": "医保卡密码忘了怎么办\n带上身份证到银行重置医保卡密码。"})
    settings = make_settings(corpus=corpus)
    assert run(capsys, "reindex", "--corpus", str(corpus), "--index", settings.index_dir, "--quiet")[0] == 0
    code, out, _ = run(capsys, "search", "醫保卡", "--index", settings.index_dir)
    assert code == 0 and '"total": 1' in out and "<mark>医保卡</mark>" in out


def test_help_documents_every_exit_code(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for code in (
        "0 ok",
        "1 failed",
        "2 indexed with files skipped",
        "3 another reindex is running",
        "64 usage error",
        "78 bad setting",
    ):
        assert code in text


def test_settings_prints_the_table_without_secrets(capsys, monkeypatch):
    monkeypatch.setenv("SEARCH_API_KEYS", "s3cret-key")
    monkeypatch.setenv("SEARCH_SNIPPET_CHARS", "99")
    code, out, _ = run(capsys, "settings")
    assert code == 0
    assert "SEARCH_SNIPPET_CHARS  (int, default 160, now 99)" in out
    assert "SEARCH_API_KEYS" in out and "s3cret-key" not in out and "'(set)'" in out
    assert out.count("\n    ") == len(dataclasses.fields(cli.Settings))


def test_version(capsys):
    from search_service import __version__

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"search-service {__version__}"


def test_a_busy_port_is_one_line_and_exit_1(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--index", str(tmp_path / "index"), "--port", str(port))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"search-service serve: cannot listen on 127.0.0.1:{port}: ")


def test_a_serve_that_fails_to_start_leaves_no_metrics_folder_behind_nor_names_one(tmp_path, capsys, monkeypatch):
    """serve without an index ends at once; the workers' metrics folder it made is removed,
    and the variable naming it too (the servers started next would inherit a folder that
    is gone, and answer /metrics with 500)."""
    import os

    from search_service.devtools.ports import free_port

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    code, _, err = run(capsys, "serve", "--index", str(tmp_path / "none"), "--port", str(free_port()))
    assert code == 1 and "no index" in err
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert not list(temp.iterdir())
