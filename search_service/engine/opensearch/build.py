"""Writing an OpenSearch index version: analysed here, on every core; bulk-loaded there.

Each share of the corpus is analysed and loaded by a forked process of its
own (our analysis is the costly part, and it is Python), in bounded batches
through opensearch-py's ``streaming_bulk``: a batch the cluster answers 429
is sent again after a growing pause, a request that fails on a node (5xx,
connection) goes to another, and every passage the cluster still rejects is
reported by id and reason: the build then fails and nothing is switched.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy import exceptions as ox

from search_service.engine.base import Build, DocumentTable, WriteProgress, Record
from search_service.engine.forked import ShareFailed, available, run_shares
from search_service.engine.opensearch.client import make_client, unavailable
from search_service.engine.opensearch.schema import field_name, index_body, passage_document
from search_service.errors import BuildError
from search_service.fields import FIELDS
from search_service.settings import Settings
from search_service.text.analysis import Analysis

BATCH = 500  # passages a bulk request
_SHARE_SEQ = 1 << 40  # each share numbers its passages from share * this: seq keeps the corpus order


class OpenSearchBuild(Build):
    def __init__(self, engine: Any, name: str, analysis: Analysis, base: str | None) -> None:
        self.engine = engine
        self.client: OpenSearch = engine.client
        self.settings: Settings = engine.settings
        self.name = name
        self.index = engine.index_name(name)
        self.analysis = analysis
        self.base = base
        try:
            body = index_body(self.settings.opensearch_shards, self.settings.opensearch_replicas, engine.ranking)
            self.client.indices.create(index=self.index, body=body)
        except ox.TransportError as exc:
            self.discard()
            raise BuildError(f"cannot create the index {self.index!r}: {unavailable(exc).message}") from None

    def write(self, shares: Sequence[Iterable[Record]], *, delete_docs: Sequence[str] = (),
              progress: WriteProgress | None = None) -> None:
        self.analysis.initialize()  # load jieba before forking: the writers inherit it
        first_seq = self._copy_base(set(delete_docs)) if self.base is not None else 0
        if available(shares):
            try:
                loaded = run_shares(functools.partial(_load_share, self.settings, self.index, self.analysis,
                                                      first_seq), shares, progress)
            except ShareFailed as exc:
                raise BuildError(f"loading failed ({exc}); nothing switched") from None
            failures = [f for share_failures in loaded for f in share_failures]
        else:
            done = [0]

            def counted(n: int) -> None:
                done[0] += n
                if progress is not None:
                    progress(done[0])

            failures = _load(self.client, self.index, self.analysis,
                             (r for share in shares for r in share), first_seq, counted)
        if failures:
            shown = "; ".join(failures[:5])
            raise BuildError(f"the cluster rejected {len(failures)} passage(s): {shown}; "
                             "nothing switched, the previous version stays current")

    def _copy_base(self, leave_out: set[str]) -> int:
        """Copy the base version's passages, but those of ``leave_out`` documents, as
        they are (analysed fields included: nothing is analysed again); the next seq."""
        source = self.engine.index_name(self.base)
        top = -1

        def actions() -> Iterable[dict[str, Any]]:
            nonlocal top
            for hit in helpers.scan(self.client, index=source, query={"query": {"match_all": {}}}, size=1000,
                                    preserve_order=False):
                doc = hit["_source"]
                top = max(top, doc.get("seq", -1))
                if doc["doc_id"] not in leave_out:
                    yield {"_index": self.index, "_id": hit["_id"], "_source": doc}

        copied, errors = helpers.bulk(self.client, actions(), chunk_size=BATCH, max_retries=8, initial_backoff=0.5,
                                      raise_on_error=False, stats_only=False)
        if errors:
            raise BuildError(f"copying the current version failed for {len(errors)} passage(s); nothing switched")
        return top + 1

    def finish(self, passages: int, manifest: dict[str, Any], documents: DocumentTable) -> None:
        self.client.indices.put_settings(index=self.index, body={"index": {"refresh_interval": "1s"}})
        self.client.indices.refresh(index=self.index)
        count = int(self.client.count(index=self.index)["count"])
        if count != passages:
            raise BuildError(f"the new index holds {count} passages, expected {passages}; not switched")
        empty = [f.name for f in FIELDS if not self.client.count(index=self.index, body={
            "query": {"exists": {"field": field_name(f.name)}}})["count"]]
        self.client.cluster.health(index=self.index, wait_for_status="yellow", params={"timeout": "60s"}, request_timeout=70)
        self.engine.store_documents(self.name, documents)
        # Written last: a version is complete when its index carries its manifest.
        self.client.indices.put_mapping(index=self.index, body={"_meta": {"manifest": {
            **manifest, "version": self.name, "schema_version": self.engine.layout, "empty_fields": empty}}})

    def discard(self) -> None:
        try:
            self.client.indices.delete(index=self.index, ignore_unavailable=True)
            self.engine.drop_documents(self.name)
        except ox.TransportError:
            pass  # the next reindex removes what is left


def _load(client: OpenSearch, index: str, analysis: Analysis, records: Iterable[Record], first_seq: int,
          counted: Any) -> list[str]:
    """Analyse and bulk-load ``records``; the passages the cluster rejected, as 'id: reason'."""

    def actions() -> Iterable[dict[str, Any]]:
        for seq, record in enumerate(records, start=first_seq):
            yield {"_index": index, "_id": record["passage_id"], "_source": passage_document(record, seq, analysis)}

    failures: list[str] = []
    pending = 0
    for ok, item in helpers.streaming_bulk(client, actions(), chunk_size=BATCH, max_chunk_bytes=20_000_000,
                                           max_retries=8, initial_backoff=0.5,  # type: ignore[arg-type]  # a float works; typed int
                                           max_backoff=30,
                                           raise_on_error=False, raise_on_exception=False):
        if not ok:
            result = next(iter(item.values()))
            error = result.get("error")
            reason = error.get("reason") if isinstance(error, dict) else error
            failures.append(f"{result.get('_id')}: {reason or result.get('status')}")
        pending += 1
        if pending == 100:
            counted(pending)
            pending = 0
    counted(pending)
    return failures


def _load_share(settings: Settings, index: str, analysis: Analysis, first_seq: int, number: int,
                share: Iterable[Record], count: Any) -> list[str]:
    """:func:`_load` of one share in a forked process, with its own client."""
    return _load(make_client(settings), index, analysis, share, first_seq + number * _SHARE_SEQ, count)
