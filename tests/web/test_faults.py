"""Injected faults: nothing served is lost, and the service keeps answering."""

import dataclasses
import errno
import json
import logging
import shutil
import time

import pytest
from whoosh.filedb import filestore

from search_service.engine.whoosh.layout import IndexRoot
from search_service.errors import BuildError, IndexUnavailable
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from tests.helpers import write_corpus

DOC = "标题\n医保卡密码忘了可以带身份证到医保中心重置密码。"


@pytest.fixture
def built(tmp_path, make_settings):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC})
    settings = make_settings(corpus=corpus, reload_seconds=0)
    build_index(settings)
    return corpus, settings


def segment_files(version_dir):
    return [p for p in version_dir.iterdir() if p.suffix in (".seg", ".trm", ".pst", ".col")]


def test_a_truncated_new_version_is_not_served_and_health_says_why(built):
    corpus, settings = built
    service = SearchService(settings)
    good = service.health()["version"]
    (corpus / "b.txt").write_text("标题二\n社保卡激活要去银行。", encoding="utf-8")
    build_index(settings)
    root = IndexRoot(settings.index_dir)
    for f in segment_files(root.current_dir()):
        f.write_bytes(f.read_bytes()[:20])  # truncated on disk
    health = service.health()
    assert health["status"] == "degraded" and health["version"] == good
    assert "cannot be opened" in health["warning"]
    assert service.search(SearchRequest.create(settings, q="医保卡")).total == 1  # still answering
    opened = []
    original_open = service._open
    service._open = lambda name: opened.append(name) or original_open(name)
    service.health()
    assert opened == []  # a version that failed to open is not reopened on every check
    # A fresh worker (a restart) serves the newest complete version it can read, and says why.
    fresh = SearchService(settings).health()
    assert fresh["status"] == "degraded" and fresh["version"] == good
    assert "cannot be opened" in fresh["warning"] and f"serving the older version {good}" in fresh["warning"]
    shutil.rmtree(root.versions_dir / good)  # nothing readable left: 503
    with pytest.raises(IndexUnavailable, match="cannot be opened"):
        SearchService(settings).health()


def test_a_served_version_damaged_on_disk_is_never_reported_ok(built):
    """Its files truncated while it is being served: /health says so, and searches
    are answered from the older complete version, or 503; never a 500."""
    corpus, settings = built
    first = SearchService(settings).health()["version"]
    (corpus / "b.txt").write_text("标题二\n社保卡激活要去银行。", encoding="utf-8")
    build_index(settings)
    service = SearchService(settings)
    served = service.health()["version"]
    assert served != first
    for f in segment_files(IndexRoot(settings.index_dir).current_dir()):
        f.write_bytes(f.read_bytes()[:20])
    health = service.health()
    assert health["status"] == "degraded" and health["version"] == first
    assert "changed size" in health["warning"]
    assert service.search(SearchRequest.create(settings, q="医保卡")).total == 1
    # Damage met by a search first (no /health before it), with no readable version
    # left to fall back on (the served one damaged above, the oldest removed): 503.
    service2 = SearchService(settings.replace(reload_seconds=3600))
    shutil.rmtree(IndexRoot(settings.index_dir).versions_dir / first)
    (corpus / "c.txt").write_text("标题三\n医保卡补办。", encoding="utf-8")
    build_index(settings)
    service2.current()
    for f in segment_files(IndexRoot(settings.index_dir).current_dir()):
        f.write_bytes(f.read_bytes()[:20])
    with pytest.raises(IndexUnavailable, match="cannot be read"):
        for q in ("医保卡", "社保卡", "银行", "补办"):
            service2.search(SearchRequest.create(settings, q=q))


def test_a_full_disk_while_building_fails_cleanly(built, monkeypatch):
    corpus, settings = built
    root = IndexRoot(settings.index_dir)
    before = root.current_name()
    (corpus / "b.txt").write_text("标题二\n社保卡激活要去银行。", encoding="utf-8")
    original = filestore.FileStorage.create_file
    calls = {"n": 0}

    def failing_create_file(self, name, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, name, **kwargs)

    monkeypatch.setattr(filestore.FileStorage, "create_file", failing_create_file)
    with pytest.raises(BuildError, match="No space left on device"):
        build_index(settings)
    monkeypatch.undo()
    assert root.current_name() == before
    assert [p.name for p in root.versions_dir.iterdir()] == [before]  # the half-built version is gone
    assert SearchService(settings).search(SearchRequest.create(settings, q="医保卡")).total == 1
    assert build_index(settings).switched  # and the next reindex succeeds


def test_a_missing_or_unreadable_corpus_leaves_the_index_untouched(built, tmp_path):
    corpus, settings = built
    root = IndexRoot(settings.index_dir)
    before = root.current_name()
    from search_service.errors import CorpusError

    with pytest.raises(CorpusError):
        build_index(settings.replace(corpus_dir=str(tmp_path / "gone")))
    corpus.chmod(0)
    try:
        if not __import__("os").access(corpus, __import__("os").R_OK):
            with pytest.raises(CorpusError, match="not readable"):
                build_index(settings)
    finally:
        corpus.chmod(0o755)
    assert root.current_name() == before and len(list(root.versions_dir.iterdir())) == 1


def test_an_engine_that_does_not_answer_for_a_while_keeps_its_version(built):
    """A 503 while the engine is unreachable (a cluster down), then ok again: the
    version is not taken for damaged and replaced."""
    _, settings = built
    service = SearchService(settings.replace(reload_seconds=0))
    version = service.current()
    answering = version.index.rank

    def unreachable(*args, **kwargs):
        raise IndexUnavailable("the OpenSearch cluster cannot be reached")

    version.index.rank = unreachable
    with pytest.raises(IndexUnavailable, match="cannot be reached"):
        service.search(SearchRequest.create(settings, q="医保卡"))
    version.index.rank = answering
    assert service.health() == {"status": "ok", "version": version.name, "passages": 1}
    assert service.current() is version  # the same opened version, not a reopened "fallback"
    assert service.search(SearchRequest.create(settings, q="医保卡")).total == 1


def test_a_public_health_never_shows_paths_or_file_names(built):
    """With API keys, /health is public; why the index is degraded or unavailable (the
    index's absolute path, segment file names) is told only to a caller with a key."""
    from search_service.web.app import create_app

    corpus, settings = built
    (corpus / "b.txt").write_text("标题二\n社保卡激活要去银行。", encoding="utf-8")
    build_index(settings)
    app = create_app({**dataclasses.asdict(settings), "api_keys": "k1"})
    client = app.test_client()
    for f in segment_files(IndexRoot(settings.index_dir).current_dir()):
        f.write_bytes(f.read_bytes()[:20])
    public = client.get("/health").get_json()
    keyed = client.get("/health", headers={"X-API-Key": "k1"}).get_json()
    assert public["status"] == keyed["status"] == "degraded"
    assert "index version" in keyed["warning"]  # the detail an operator needs
    text = json.dumps(public, ensure_ascii=False)
    assert keyed["warning"] not in text and "index version" not in text and "server's log" in public["warning"]
    shutil.rmtree(IndexRoot(settings.index_dir).versions_dir)  # nothing left to serve
    unavailable = client.get("/health")
    assert unavailable.status_code == 503
    assert settings.index_dir not in unavailable.get_data(as_text=True)
    assert settings.index_dir in client.get("/health", headers={"X-API-Key": "k1"}).get_data(as_text=True)


def test_an_engine_down_is_logged_once_and_asked_again_only_after_reload_seconds(built, caplog, monkeypatch):
    """While the engine cannot say which version is current, the service keeps its version,
    logs that once (it used to log an ERROR line a request: 14,384 in 40 s) and asks again
    after ``reload_seconds``, not at every request (issue 38, 6)."""
    _, settings = built
    service = SearchService(settings.replace(reload_seconds=0.2))
    version = service.current()
    asked = []

    def down():
        asked.append(1)
        raise IndexUnavailable("the OpenSearch cluster cannot be reached")

    monkeypatch.setattr(service.engine, "current_name", down)
    service._checked = 0.0
    caplog.set_level(logging.ERROR)
    for _ in range(50):
        assert service.current() is version
    assert len(asked) == 1
    time.sleep(0.25)
    assert service.current() is version and len(asked) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"keeping index version {version.name}: the OpenSearch cluster cannot be reached"]
    monkeypatch.undo()
    time.sleep(0.25)
    assert service.current() is version and service.health()["status"] == "ok"
