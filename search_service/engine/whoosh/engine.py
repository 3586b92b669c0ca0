"""The Whoosh engine: index versions as folders of one index root on local disk.

index/
  CURRENT              name of the version being served (switched with os.replace)
  .reindex.lock        held by the one running reindex
  versions/<name>/     a Whoosh index, documents.json and, written last, manifest.json
"""

from __future__ import annotations

import json
import shutil
from contextlib import AbstractContextManager
from typing import Any

from search_service.engine.base import Build, CurrentVersion, Engine, IndexVersion
from search_service.engine.whoosh.build import WhooshBuild
from search_service.engine.whoosh.layout import DOCUMENTS, IndexRoot
from search_service.engine.whoosh.version import WhooshVersion
from search_service.errors import IndexUnavailable, SearchError
from search_service.fields import Ranking
from search_service.settings import Settings
from search_service.text.analysis import Analysis

# The on-disk layout: 3 = compact array posting blocks, 4 = and uncompressed
# stored fields (:mod:`.codec`), 5 = the modules of the engine package (the
# schema and codec pickled in each index name them), 6 = and groups.npy,
# 7 = metadata filter values normalized like text, 8 = the related section's fields,
# 9 = order.npy (ties in corpus order; an incremental reindex appends segments),
# 10 = ordinal and content_hash stored, not indexed (nothing searches them),
# 11 = each segment's ranking postings (rankfile.py), the gram fields' only postings,
# 12 = and their ids whole, not gaps, 13 = a version read with the schema made
# from its manifest's analysis config; its pickled schema holds Whoosh's own
# tokenizers, not ours. Whoosh still pickles each segment's codec object, so
# moving codec.py (ArrayCodec) is a layout change; nothing else of ours is on disk.
# 14 = the pairs field (ranking postings only).
LAYOUT = 14
REPORT = "last-reindex.json"


class WhooshEngine(Engine):
    layout = LAYOUT
    ranks_in_process = True

    def __init__(self, settings: Settings, ranking: Ranking | None = None) -> None:
        self.root = IndexRoot(settings.index_dir)
        self.location = str(self.root.root)
        self.report_path = self.root.root / REPORT
        self.ranking = ranking or Ranking()
        self.cache_bytes = settings.posting_cache_mb * 1_000_000
        self.writer_bytes = settings.writer_memory_mb << 20
        self.cache_dir = str(settings.jieba_cache_dir)

    def current_name(self) -> str | None:
        return self.root.current_name()

    def versions(self) -> list[str]:
        return [p.name for p in reversed(self.root.complete_versions())]

    def open(self, name: str) -> IndexVersion:
        path = self.root.versions_dir / name
        manifest = self.root.manifest(path)  # IndexUnavailable when missing or unfinished
        if manifest.get("schema_version") != self.layout:
            raise IndexUnavailable(
                f"index version {name!r} was written in layout {manifest.get('schema_version')}, "
                f"this release reads layout {self.layout}: run `search-service reindex`"
            )
        return WhooshVersion(name, path, manifest, self.ranking, self.cache_bytes, self.cache_dir)

    def lock(self) -> AbstractContextManager[Any]:
        return self.root.lock()

    def previous(self) -> CurrentVersion | None:
        try:
            path = self.root.current_dir()
            manifest = self.root.manifest(path)
            documents = json.loads((path / DOCUMENTS).read_text("utf-8"))
        except (SearchError, OSError, ValueError):
            return None
        return CurrentVersion(manifest, documents)

    def new_build(self, analysis: Analysis, base: str | None = None) -> Build:
        path = self.root.new_version_dir()
        try:
            return WhooshBuild(
                path, analysis, self.root.versions_dir / base if base else None, self.layout, self.writer_bytes
            )
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def switch(self, build: Build) -> None:
        self.root.switch(self.root.versions_dir / build.name)

    def clean(self, keep: int) -> None:
        self.root.clean(keep)

    def discard_unfinished(self) -> None:
        self.root.discard_unfinished()
