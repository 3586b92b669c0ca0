"""Shared fixtures: the seed corpus indexed once, tiny corpora and indexes built in tmp_path.

The lanes (CONTRIBUTING.md): plain ``pytest`` runs the Whoosh engine and
deselects the tests marked ``cluster``, ``browser``, ``deploy`` and ``bench``
(setup.cfg's ``addopts``); ``bash scripts/run.sh test`` runs everything with
``--engine all -m ""``. A test that runs on the OpenSearch engine (its
``engine`` parameter, or the cluster fixture) is marked ``cluster``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from search_service.devtools.cluster import LocalCluster
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from search_service.settings import ENGINES, Settings
from search_service.web.app import create_app
from tests.helpers import SEED_CORPUS, on_engine, settings_factory

ENV_PREFIX = "SEARCH_"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=(*ENGINES, "all"),
        default="whoosh",
        help="the engine(s) the engine-parametrized tests run on (default: whoosh)",
    )


def _engines(config: pytest.Config) -> tuple[str, ...]:
    chosen = config.getoption("--engine")
    return ENGINES if chosen == "all" else (chosen,)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", _engines(metafunc.config), scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_cluster = callspec is not None and callspec.params.get("engine") == "opensearch"
        if on_cluster or "opensearch_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session", autouse=True)
def _no_developer_settings() -> Iterator[None]:
    """A developer's ``SEARCH_*`` settings never reach a test, nor a server it starts (the
    jieba cache's folder excepted: it only saves time). Session-wide and first, so that
    the session's indexes are built without them too."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(ENV_PREFIX) and name != "SEARCH_CACHE_DIR":
                patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def opensearch_cluster(tmp_path_factory: pytest.TempPathFactory):
    """Three OpenSearch nodes (each its own JVM) on loopback ports, for the whole run."""
    cluster = LocalCluster(tmp_path_factory.mktemp("opensearch"), nodes=3, heap_mb=320)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    return settings_factory(tmp_path)


@pytest.fixture
def engine_settings(
    make_settings: Callable[..., Settings], engine: str, request: pytest.FixtureRequest
) -> Callable[..., Settings]:
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
