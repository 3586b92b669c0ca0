"""The OpenSearch engine on a real three-node cluster: shards, replicas and failover,
versions behind an alias, the cluster-wide lock, bulk rejections, outages."""

from __future__ import annotations

import threading
import time

import pytest

from search_service.ingest.reindex import build_index
from search_service.engine import open_engine
from search_service.engine.opensearch.build import _load
from search_service.engine.opensearch.client import make_client
from search_service.errors import IndexLocked, IndexUnavailable
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from search_service.text.analysis import AnalysisConfig, get_analysis
from tests.helpers import SEED_CORPUS, assert_error, jsonl, load_script, on_engine, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

QUERIES = ["医保卡密码忘了怎么办", "醫保卡被鎖了怎麼解鎖", "社保卡", '"密码重置"', "医保卡 -银行", "+解锁 银行", "12333"]
DOC_A = "医保卡密码忘了怎么办\n忘记医保卡密码可以带上本人身份证和医保卡，到参保地医疗管理中心申请办理密码挂失，然后重新设置密码。"
DOC_B = "醫保卡被鎖如何解鎖\n輸入錯誤密碼的，必須持有效身份證件原件到社保卡管理中心辦理密碼重置或解鎖業務。"


@pytest.fixture
def on_cluster(make_settings, request):
    def make(corpus=None, **opensearch):
        return on_engine(make_settings(corpus), "opensearch", request, **opensearch)

    return make


def ranking(settings, q, **params):
    service = SearchService(settings.replace(result_cache_mb=0))
    return [h.passage_id for h in service.search(SearchRequest.create(settings, q=q, size=20, **params)).hits]


def test_two_shards_rank_like_one(on_cluster):
    one = on_cluster(SEED_CORPUS, opensearch_shards=1)
    two = on_cluster(SEED_CORPUS, opensearch_shards=2)
    build_index(one)
    build_index(two)
    assert make_client(two).indices.get_settings(index=f"{two.opensearch_prefix}-v-*")
    for q in QUERIES:
        assert ranking(one, q) == ranking(two, q), q
        assert ranking(one, q, collapse="doc") == ranking(two, q, collapse="doc"), q


def test_a_node_stopped_while_clients_query_fails_no_request(on_cluster, opensearch_cluster):
    """With the default settings (one replica): the cluster as shipped loses a node safely."""
    settings = on_cluster(SEED_CORPUS)
    assert settings.opensearch_replicas == 1
    build_index(settings)
    make_client(settings).cluster.health(wait_for_status="green", params={"timeout": "60s"}, request_timeout=70)
    service = SearchService(settings.replace(result_cache_mb=0))
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def client(n: int) -> None:
        while not stop.is_set():
            try:
                result = service.search(SearchRequest.create(settings, q=QUERIES[answered[0] % len(QUERIES)]))
                assert result.total > 0
                answered[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        before = answered[0]
        opensearch_cluster.stop_node(2)
        time.sleep(5)
        after = answered[0]
    finally:
        stop.set()
        for t in threads:
            t.join()
        opensearch_cluster.start_node(2)
    opensearch_cluster.wait_healthy(3)
    assert failures == []
    assert before > 10 and after > before + 10


def test_reindex_switching_the_alias_while_clients_query(on_cluster, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A, "b.txt": DOC_B})
    settings = on_cluster(corpus).replace(reload_seconds=0.2, keep_versions=3)  # every version served stays to check
    build_index(settings)
    service = SearchService(settings.replace(result_cache_mb=0))
    engine = open_engine(settings)
    failures: list[str] = []
    answers: list[tuple[str, list[str]]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                result = service.search(SearchRequest.create(settings, q="医保卡密码"))
                answers.append((result.version, [h.passage_id for h in result.hits]))
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(2):
            (corpus / f"c{i}.txt").write_text(f"新增第{i}篇\n医保卡密码第{i}次说明：到银行柜台重置。", encoding="utf-8")
            assert build_index(settings).switched
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    versions = {v for v, _ in answers}
    assert len(versions) >= 2
    for version in versions:  # every hit from a complete version that holds it
        index = engine.open(version)
        for v, ids in answers:
            if v == version:
                assert all(index.passage(pid) is not None for pid in ids)


def test_incremental_gives_the_results_of_a_full_rebuild(on_cluster, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A, "b.txt": DOC_B,
                                                "faq.jsonl": jsonl({"id": "q1", "text": "社保卡怎么激活\n到银行激活。"})})
    settings = on_cluster(corpus)
    build_index(settings)
    (corpus / "a.txt").write_text(DOC_A + "\n补充：也可以拨打12333咨询。", encoding="utf-8")
    (corpus / "b.txt").unlink()
    report = build_index(settings, incremental=True)
    assert report.mode == "incremental" and (report.reanalyzed, report.removed) == (1, 1)
    full = on_cluster(corpus)
    build_index(full)
    for q in QUERIES:
        assert ranking(settings, q) == ranking(full, q), q
    nothing = build_index(settings, incremental=True)
    assert (nothing.reanalyzed, nothing.removed) == (0, 0)


def test_the_lock_is_the_clusters_and_two_reindexes_cannot_both_build(on_cluster, tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = on_cluster(corpus)
    build_index(settings)
    reindex = load_script("reindex")
    other_machine = open_engine(settings)  # another process's engine, same cluster and alias
    with other_machine.lock():
        with pytest.raises(IndexLocked):
            build_index(settings)
        env_args = ["--corpus", str(corpus), "--quiet"]
        with pytest.MonkeyPatch.context() as mp:
            for name, value in (("SEARCH_ENGINE", "opensearch"), ("SEARCH_OPENSEARCH_URLS", settings.opensearch_urls),
                                ("SEARCH_OPENSEARCH_PREFIX", settings.opensearch_prefix)):
                mp.setenv(name, value)
            assert reindex.main(env_args) == 3
        assert "another reindex is running" in capsys.readouterr().err
    assert build_index(settings).switched


def test_two_versions_are_kept_and_a_failed_build_leaves_the_alias(on_cluster, tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = on_cluster(corpus)
    client = make_client(settings)
    for _ in range(3):
        build_index(settings)
    indexes = sorted(client.indices.get(index=f"{settings.opensearch_prefix}-v-*"))
    assert len(indexes) == 2
    engine = open_engine(settings)
    current = engine.current_name()
    from search_service.engine.opensearch import build as build_module

    monkeypatch.setattr(build_module, "passage_document", lambda *a: (_ for _ in ()).throw(RuntimeError("disk")))
    with pytest.raises(Exception):
        build_index(settings)
    monkeypatch.undo()
    assert engine.current_name() == current
    assert ranking(settings, "医保卡密码")
    assert build_index(settings).switched  # and the leftover is removed
    assert len(client.indices.get(index=f"{settings.opensearch_prefix}-v-*")) == 2


def test_every_rejected_passage_is_reported(on_cluster):
    settings = on_cluster()
    client = make_client(settings)
    index = f"{settings.opensearch_prefix}-v-reject"
    client.indices.create(index=index, body={"mappings": {"dynamic": "strict", "properties": {
        "passage_id": {"type": "keyword"}}}})
    records = [{"passage_id": f"d#{i}", "doc_id": "d", "ordinal": i, "start": 0, "end": 2, "text": "医保",
                "title": "", "heading": "", "source": "d.txt", "metadata": {}, "content_hash": "h"} for i in range(3)]
    counted: list[int] = []
    failures = _load(client, index, get_analysis(AnalysisConfig()), iter(records), 0, counted.append)
    assert len(failures) == 3 and all("strict" in f for f in failures)
    assert failures[0].startswith("d#0:")


def test_cluster_stopped_is_503_and_health_degraded_then_answers_again(on_cluster, opensearch_cluster):
    from search_service.web.app import create_app

    settings = on_cluster(SEED_CORPUS).replace(reload_seconds=0.2, opensearch_timeout=3.0)
    build_index(settings)
    client = create_app({**settings.__dict__, "result_cache_mb": 0}).test_client()
    assert client.get("/search", query_string={"q": "医保卡"}).status_code == 200
    opensearch_cluster.stop()
    try:
        time.sleep(0.3)
        response = client.get("/search", query_string={"q": "医保卡"})
        assert_error(response, 503, "index_unavailable")
        health = client.get("/health")
        assert health.status_code in (200, 503)
        body = health.get_json()
        assert body.get("status") == "degraded" or body["error"]["code"] == "index_unavailable"
    finally:
        opensearch_cluster.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.get("/search", query_string={"q": "医保卡"}).status_code == 200:
            break
        time.sleep(0.5)
    assert client.get("/search", query_string={"q": "医保卡"}).status_code == 200
    assert client.get("/health").get_json()["status"] == "ok"


def test_an_unreachable_cluster_is_unavailable_not_a_crash(make_settings):
    settings = make_settings().replace(engine="opensearch", opensearch_urls="http://127.0.0.1:9", opensearch_timeout=1.0)
    with pytest.raises(IndexUnavailable, match="cannot be reached"):
        SearchService(settings).current()


def test_a_build_loaded_by_two_processes_ranks_like_one_loaded_by_one(on_cluster, tmp_path, monkeypatch):
    from search_service.ingest import reindex as reindex_module
    from tests.engine.whoosh.test_writer import corpus_records

    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": corpus_records(200, seed=3)})
    monkeypatch.setattr(reindex_module, "PARALLEL_MIN_PASSAGES", 50)
    serial, parallel = on_cluster(corpus).replace(workers=1), on_cluster(corpus).replace(workers=2)
    seen: list[int] = []
    assert build_index(serial).passages == build_index(parallel, progress=lambda phase, done, total: seen.append(done) if phase == "analyzing" else None).passages
    assert seen and seen[-1] == build_index(serial).passages
    for q in ("医保卡密码忘了怎么办", "醫保卡被鎖", "银行 解锁", '"重新设置密码"'):
        assert ranking(serial, q) == ranking(parallel, q), q
