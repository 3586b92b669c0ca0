"""Prometheus metrics at /metrics (prometheus_client).

Under gunicorn each worker is a process: ``serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the app is made, each worker writes its
counters and histograms to files there, and /metrics, answered by any worker,
adds up every worker's (prometheus_client's multiprocess mode). What
describes the index (version, passages, the last reindex) is read when
scraped, by the worker that answers. Without that variable (tests, one
process) the app's own registry is exposed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from search_service.search.service import SearchService

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The multiprocess files a worker's metrics write (prometheus_client names them
# <kind>_<pid>.db), and the size it maps them at first.
METRIC_FILES = ("counter", "histogram")
METRIC_FILE_BYTES = 1 << 20
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Seconds; a search is ~1 ms warm, a cold or large one tens of ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The app's metrics: requests by route and status, their latency, cache lookups."""

    def __init__(self, service: SearchService) -> None:
        # Imported here: prometheus_client picks its multiprocess mode from the
        # environment when imported, which serve sets before making the app.
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.service = service
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "search_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "search_http_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache = Counter(
            "search_cache_lookups",
            "Cache lookups by cache (result, posting) and outcome.",
            ["cache", "outcome"],
            registry=self.registry,
        )
        self._seen: dict[str, tuple[str | None, int, int]] = {}
        self.enabled = True
        if not self.multiprocess:
            self.registry.register(IndexCollector(service))

    def reserve(self, pid: int) -> bool:
        """Allocate this worker's metric files on disk before it writes to them.

        prometheus_client maps them sparse: on a full filesystem its first write to a page
        kills the process with SIGBUS, a signal no code can catch. Allocated up front, the
        pages exist; when the filesystem refuses them, this worker counts nothing (its
        searches go on) and says so. False then."""
        folder = os.environ.get(MULTIPROC_ENV)
        if not self.multiprocess or not folder:
            return True
        partial = ""
        try:
            for kind in METRIC_FILES:
                path = os.path.join(folder, f"{kind}_{pid}.db")
                if os.path.exists(path) and os.path.getsize(path) >= METRIC_FILE_BYTES:
                    continue
                # Allocated under another name, then renamed: /metrics, answered by another
                # worker, reads every *.db file and must never see one half made (empty).
                partial = f"{path}.{os.getpid()}.new"
                fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.posix_fallocate(fd, 0, METRIC_FILE_BYTES)
                finally:
                    os.close(fd)
                os.replace(partial, path)
        except OSError as exc:
            if partial:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
            self.enabled = False
            log.error("worker %s counts no metrics: cannot allocate them in %s: %s", pid, folder, exc.strerror)
            return False
        return True

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        # A method the API has no use for is one label value, whatever a client sends.
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        self._count_caches()

    def _count_caches(self) -> None:
        """Add what the served version's caches counted since the last request (a new
        version's caches start from zero)."""
        version, counts = self.service.cache_counts()
        for cache, (hits, misses) in counts.items():
            seen_version, seen_hits, seen_misses = self._seen.get(cache, (None, 0, 0))
            if seen_version != version:
                seen_hits = seen_misses = 0
            if hits > seen_hits:
                self.cache.labels(cache, "hit").inc(hits - seen_hits)
            if misses > seen_misses:
                self.cache.labels(cache, "miss").inc(misses - seen_misses)
            self._seen[cache] = (version, hits, misses)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus's text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(IndexCollector(self.service))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class IndexCollector:
    """The served index and the last reindex, read when scraped."""

    def __init__(self, service: SearchService) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            health = self.service.health()
        except Exception:  # noqa: BLE001  (no index: say so instead of failing the scrape)
            health = {}
        up = GaugeMetricFamily("search_index_up", "1 when an index version is served.")
        up.add_metric([], 1.0 if health else 0.0)
        yield up
        if health:
            info = GaugeMetricFamily("search_index_info", "The served index version.", labels=["version"])
            info.add_metric([str(health.get("version"))], 1.0)
            yield info
            passages = GaugeMetricFamily("search_index_passages", "Passages in the served version.")
            passages.add_metric([], float(health.get("passages") or 0))
            yield passages
        last = self.service.last_reindex()
        if last is not None:
            seconds = GaugeMetricFamily("search_reindex_last_duration_seconds", "How long the last reindex ran.")
            seconds.add_metric([], float(last.get("seconds", 0.0)))
            yield seconds
            ok = GaugeMetricFamily(
                "search_reindex_last_success", "1 when the last reindex succeeded, 0 when it failed."
            )
            ok.add_metric([], 1.0 if last.get("ok") else 0.0)
            yield ok
            when = GaugeMetricFamily(
                "search_reindex_last_timestamp_seconds", "When the last reindex ended (Unix time)."
            )
            when.add_metric([], float(last.get("finished", 0.0)))
            yield when
