"""Shared fixtures: the seed corpus indexed once, tiny corpora and indexes built in tmp_path."""

from __future__ import annotations

import shutil
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


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    return settings_factory(tmp_path)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bundled corpus, indexed once for the session."""
    root = tmp_path_factory.mktemp("seed")
    corpus = root / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = Settings.from_env(corpus_dir=str(corpus), index_dir=str(root / "index"))
    report = build_index(settings)
    assert report.switched and not report.skipped
    return settings


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
