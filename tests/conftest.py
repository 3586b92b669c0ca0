"""Shared fixtures: tiny corpora and indexes built in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One jieba dictionary cache for the whole run (and across runs), never /tmp.
os.environ.setdefault("SEARCH_CACHE_DIR", str(ROOT / ".cache" / "jieba"))

from search_service.app import create_app  # noqa: E402
from search_service.index import build_index  # noqa: E402
from search_service.search import SearchRequest, SearchService  # noqa: E402
from search_service.settings import Settings  # noqa: E402

SEED_CORPUS = ROOT / "corpus"
SIMPLIFIED_SEED = "000_0cfe50795da03c63"
TRADITIONAL_SEED = "001_965e0e36aae651b5"


def write_corpus(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def jsonl(*records: dict[str, Any]) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"


def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a corpus and an index under ``tmp_path``, with the bundled userdict and synonyms."""

    def make(corpus: Path | None = None, **overrides: Any) -> Settings:
        return Settings.from_env(
            corpus_dir=str(corpus or tmp_path / "corpus"),
            index_dir=str(tmp_path / "index"),
            userdict=str(SEED_CORPUS / "userdict.txt"),
            synonyms=str(SEED_CORPUS / "synonyms.txt"),
            **overrides,
        )

    return make


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
