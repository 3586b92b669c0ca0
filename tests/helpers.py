"""Helpers shared by the tests: the seed corpus, tiny corpora written in tmp_path, settings for them."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# One jieba dictionary cache for the whole run (and across runs), never /tmp.
os.environ.setdefault("SEARCH_CACHE_DIR", str(ROOT / ".cache" / "jieba"))

import pytest  # noqa: E402

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


def load_script(name: str) -> Any:
    """A module of ``scripts/`` (they are files to run, not a package)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_version_index(path: Path) -> Any:
    """A Whoosh version folder's index, opened as a served version opens it (read with
    pread, analyzed as its manifest says)."""
    from search_service.engine.whoosh.schema import build_schema
    from search_service.engine.whoosh.store import open_index
    from search_service.text.analysis import AnalysisConfig, get_analysis

    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    return open_index(path, build_schema(get_analysis(AnalysisConfig.from_dict(manifest["analysis"]))))


def engine_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a server process the engine of ``settings``."""
    return {
        name: str(value)
        for name, _, _, value, _ in settings.describe()
        if name == "SEARCH_ENGINE" or name.startswith("SEARCH_OPENSEARCH")
    }


def on_engine(settings: Settings, engine: str, request: pytest.FixtureRequest, **opensearch: Any) -> Settings:
    """``settings`` on ``engine``: for OpenSearch, the test cluster and an alias of their own."""
    if engine == "whoosh":
        return settings
    cluster = request.getfixturevalue("opensearch_cluster")
    return settings.replace(
        engine="opensearch",
        opensearch_urls=",".join(cluster.urls),
        opensearch_prefix=f"t{uuid.uuid4().hex[:12]}",
        opensearch_timeout=10.0,
        **opensearch,
    )


ERROR_KEYS = {"status", "code", "message"}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """``response`` (Flask's test client's or requests') is the one JSON error shape
    with ``status`` (and ``code``); returns the error object."""
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    assert response.status_code == status, (response.status_code, body)
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
