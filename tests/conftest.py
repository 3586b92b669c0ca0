"""Shared fixtures: the seed corpus indexed once, tiny corpora and indexes built in tmp_path."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SEED_CORPUS, settings_factory

from search_service.build.reindex import build_index  # noqa: E402  (after helpers: the jieba cache)
from search_service.search.request import SearchRequest  # noqa: E402
from search_service.search.service import SearchService  # noqa: E402
from search_service.settings import Settings  # noqa: E402
from search_service.web.app import create_app  # noqa: E402
from search_service.devtools.cluster import LocalCluster  # noqa: E402

ENGINES = ("whoosh", "opensearch")


@pytest.fixture(scope="session")
def opensearch_cluster(tmp_path_factory: pytest.TempPathFactory):
    """Three OpenSearch nodes (each its own JVM) on loopback ports, for the whole run."""
    cluster = LocalCluster(tmp_path_factory.mktemp("opensearch"), nodes=3, heap_mb=320)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def on_engine(settings: Settings, engine: str, request: pytest.FixtureRequest, **opensearch: Any) -> Settings:
    """``settings`` on ``engine``: for OpenSearch, the test cluster and an alias of their own."""
    if engine == "whoosh":
        return settings
    cluster = request.getfixturevalue("opensearch_cluster")
    return settings.replace(engine="opensearch", opensearch_urls=",".join(cluster.urls),
                            opensearch_prefix=f"t{uuid.uuid4().hex[:12]}", opensearch_timeout=10.0, **opensearch)


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn, for the tests whose behaviour is the engine's."""
    return request.param


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    return settings_factory(tmp_path)


@pytest.fixture
def engine_settings(make_settings: Callable[..., Settings], engine: str,
                    request: pytest.FixtureRequest) -> Callable[..., Settings]:
    """Like ``make_settings``, on each engine in turn."""

    def make(corpus: Path | None = None, **overrides: Any) -> Settings:
        return on_engine(make_settings(corpus, **overrides), engine, request)

    return make


def _seed(tmp_path_factory: pytest.TempPathFactory, engine: str, request: pytest.FixtureRequest) -> Settings:
    root = tmp_path_factory.mktemp("seed")
    corpus = root / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = on_engine(Settings.from_env(corpus_dir=str(corpus), index_dir=str(root / "index")), engine, request)
    report = build_index(settings)
    assert report.switched and not report.skipped
    return settings


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, engine: str, request: pytest.FixtureRequest) -> Settings:
    """The bundled corpus, indexed once for the session on each engine."""
    return _seed(tmp_path_factory, engine, request)


@pytest.fixture(scope="session")
def whoosh_seed_settings(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Settings:
    """The bundled corpus in a Whoosh index, for the Whoosh engine's own tests."""
    return _seed(tmp_path_factory, "whoosh", request)


@pytest.fixture(scope="session")
def seed_service(seed_settings: Settings) -> SearchService:
    return SearchService(seed_settings)


@pytest.fixture
def search(seed_service: SearchService, seed_settings: Settings) -> Callable[..., Any]:
    def run(q: str, **params: Any):
        return seed_service.search(SearchRequest.create(seed_settings, q=q, **params))

    return run


@pytest.fixture(scope="session")
def seed_app(seed_settings: Settings):
    return create_app(seed_settings.__dict__)


@pytest.fixture
def client(seed_app):
    return seed_app.test_client()
