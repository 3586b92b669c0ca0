"""The OpenSearch engine: index versions as indexes of a cluster, the current one behind an alias.

    <prefix>                  alias: the current version (moved atomically by reindex)
    <prefix>-v-<version>      one version: a passage a document; complete once its mapping's
                              _meta holds the manifest
    <prefix>-d-<version>      per document: content hash, source, passages (for --incremental)
    <prefix>-lock             the build lock: one document, with an expiry its holder renews

The lock lives in the cluster, so two operators on two machines cannot both
build; a holder that dies stops renewing it and the next reindex may take it
once it has expired.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opensearchpy import exceptions as ox
from opensearchpy import helpers

from search_service.engine.base import Build, CurrentVersion, DocumentTable, Engine, IndexVersion
from search_service.engine.opensearch.build import OpenSearchBuild
from search_service.engine.opensearch.client import make_client, unavailable
from search_service.engine.opensearch.version import OpenSearchVersion
from search_service.errors import BuildError, IndexLocked, IndexUnavailable
from search_service.fields import Ranking
from search_service.settings import Settings
from search_service.text.analysis import Analysis

LAYOUT = 4  # 2 = metadata filter values normalized like text, 3 = the related section's fields, 4 = pairs
LOCK_SECONDS = 60  # a lock not renewed for this long belongs to a dead reindex
_LOCK_ID = "reindex"


class OpenSearchEngine(Engine):
    layout = LAYOUT

    def __init__(self, settings: Settings, ranking: Ranking | None = None) -> None:
        self.settings = settings
        self.ranking = ranking or Ranking()
        self.prefix = settings.opensearch_prefix
        self.location = f"OpenSearch alias {self.prefix!r}"
        # The cluster holds the versions; the last reindex's report stays on the machine that ran it.
        self.report_path = Path(settings.index_dir) / f"opensearch-{self.prefix}.json"
        self._client: tuple[int, Any] | None = None

    @property
    def client(self) -> Any:
        """This process's client: a server's workers fork from its master, and must not
        share the master's connections."""
        if self._client is None or self._client[0] != os.getpid():
            self._client = (os.getpid(), make_client(self.settings))
        return self._client[1]

    def index_name(self, version: str) -> str:
        return f"{self.prefix}-v-{version}"

    def _documents_index(self, version: str) -> str:
        return f"{self.prefix}-d-{version}"

    def _version_of(self, index: str) -> str:
        """The version an index ``<prefix>-v-<version>`` or ``<prefix>-d-<version>`` belongs to."""
        return index[len(self.prefix) + 3:]

    def _indexes(self, kind: str) -> list[str]:
        """Every index of one kind (``v`` versions, ``d`` documents records), complete or not."""
        return sorted(self.client.indices.get_alias(index=f"{self.prefix}-{kind}-*", expand_wildcards="open,closed"))

    # -- versions -------------------------------------------------------------

    def current_name(self) -> str | None:
        try:
            found = self.client.indices.get_alias(name=self.prefix)
        except ox.NotFoundError:
            return None
        except ox.TransportError as exc:
            raise unavailable(exc) from None
        indexes = sorted(found)
        return self._version_of(indexes[-1]) if indexes else None

    def versions(self) -> list[str]:
        try:
            found = self.client.indices.get_mapping(index=f"{self.prefix}-v-*")
        except ox.TransportError as exc:
            raise unavailable(exc) from None
        return sorted((self._version_of(index) for index, m in found.items()
                       if m["mappings"].get("_meta", {}).get("manifest")), reverse=True)

    def open(self, name: str) -> IndexVersion:
        manifest = self._manifest(name)
        if manifest is None:
            raise IndexUnavailable(f"index version {name!r} is missing or incomplete")
        if manifest.get("schema_version") != self.layout:
            raise IndexUnavailable(f"index version {name!r} was written in layout {manifest.get('schema_version')}, "
                                   f"this release reads layout {self.layout}: run `search-service reindex`")
        return OpenSearchVersion(self.client, self.index_name(name), name, manifest, self.ranking,
                                 str(self.settings.jieba_cache_dir))

    def _manifest(self, name: str) -> dict[str, Any] | None:
        try:
            found = self.client.indices.get_mapping(index=self.index_name(name))
        except ox.NotFoundError:
            return None
        except ox.TransportError as exc:
            raise unavailable(exc) from None
        mapping = next(iter(found.values()))["mappings"]
        manifest: dict[str, Any] | None = mapping.get("_meta", {}).get("manifest")
        return manifest

    def previous(self) -> CurrentVersion | None:
        try:
            name = self.current_name()
            manifest = self._manifest(name) if name else None
            if name is None or manifest is None:
                return None
            documents = {}
            for hit in _scan(self.client, self._documents_index(name)):
                documents[hit["_id"]] = hit["_source"]
        except (IndexUnavailable, ox.TransportError):
            return None
        return CurrentVersion(manifest, documents)

    def store_documents(self, name: str, documents: DocumentTable) -> None:
        index = self._documents_index(name)
        self.client.indices.create(index=index, body={
            "settings": {"index": {"number_of_shards": 1, "number_of_replicas": self.settings.opensearch_replicas}},
            "mappings": {"dynamic": False}})
        helpers.bulk(self.client, ({"_index": index, "_id": doc_id, "_source": value}
                                   for doc_id, value in documents.items()), chunk_size=2000, refresh=True)

    def drop_documents(self, name: str) -> None:
        self.client.indices.delete(index=self._documents_index(name), ignore_unavailable=True)

    # -- building ---------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        try:
            lease = _Lease(self.client, f"{self.prefix}-lock")
        except ox.TransportError as exc:
            raise BuildError(f"cannot take the build lock: {unavailable(exc).message}") from None
        try:
            yield
        finally:
            lease.release()

    def new_build(self, analysis: Analysis, base: str | None = None) -> Build:
        # Names sort in creation order; the cluster wants index names in lower case.
        now = time.time()
        name = (time.strftime("%Y%m%dt%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}-"
                + os.urandom(2).hex())
        return OpenSearchBuild(self, name, analysis, base)

    def switch(self, build: Build) -> None:
        actions: list[dict[str, Any]] = [{"add": {"index": self.index_name(build.name), "alias": self.prefix}}]
        current = self.current_name()
        if current is not None:
            actions.insert(0, {"remove": {"index": self.index_name(current), "alias": self.prefix}})
        self.client.indices.update_aliases(body={"actions": actions})  # atomic: old or new, never neither

    def clean(self, keep: int) -> None:
        current = self.current_name()
        keep_set = set(self.versions()[:max(keep, 1)]) | ({current} if current else set())
        for index in self._indexes("v") + self._indexes("d"):
            if self._version_of(index) not in keep_set:
                self.client.indices.delete(index=index, ignore_unavailable=True)


class _Lease:
    """The cluster-wide build lock: a document created only if absent, renewed while held."""

    def __init__(self, client: Any, index: str) -> None:
        self.client = client
        self.index = index
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        if not client.indices.exists(index=index):
            try:
                client.indices.create(index=index, body={"settings": {"index": {"number_of_shards": 1}}})
            except ox.RequestError:
                pass  # created by another reindex meanwhile
        self._seq: tuple[int, int] = (-1, -1)  # set by _take
        self._take()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, daemon=True, name="reindex-lock")
        self._renewer.start()

    def _body(self) -> dict[str, Any]:
        return {"owner": self.owner, "expires": time.time() + LOCK_SECONDS}

    def _take(self) -> None:
        try:
            made = self.client.index(index=self.index, id=_LOCK_ID, body=self._body(), op_type="create",
                                     refresh=True)
        except ox.ConflictError:
            held = self.client.get(index=self.index, id=_LOCK_ID)
            if held["_source"].get("expires", 0) > time.time():
                raise IndexLocked(f"another reindex is running on {self.index[:-5]!r} "
                                  f"({held['_source'].get('owner')}); try again when it ends") from None
            try:  # expired: its holder died; take it over, unless another reindex just did
                made = self.client.index(index=self.index, id=_LOCK_ID, body=self._body(), refresh=True,
                                         if_seq_no=held["_seq_no"], if_primary_term=held["_primary_term"])
            except ox.ConflictError:
                raise IndexLocked(f"another reindex is running on {self.index[:-5]!r}; try again when it ends") from None
        self._seq = (made["_seq_no"], made["_primary_term"])

    def _renew(self) -> None:
        while not self._stop.wait(LOCK_SECONDS / 4):
            try:
                made = self.client.index(index=self.index, id=_LOCK_ID, body=self._body(),
                                         if_seq_no=self._seq[0], if_primary_term=self._seq[1])
                self._seq = (made["_seq_no"], made["_primary_term"])
            except ox.TransportError:
                pass  # tried again at the next beat

    def release(self) -> None:
        self._stop.set()
        self._renewer.join(timeout=5)
        try:
            self.client.delete(index=self.index, id=_LOCK_ID, if_seq_no=self._seq[0], if_primary_term=self._seq[1],
                               refresh=True)
        except ox.TransportError:
            pass  # taken over or unreachable: it expires


def _scan(client: Any, index: str) -> Iterator[dict[str, Any]]:
    yield from helpers.scan(client, index=index, query={"query": {"match_all": {}}}, size=2000)
