"""Metrics (web/metrics.py): a worker's files are allocated before it writes them."""

import errno
import os

import prometheus_client  # noqa: F401  (read its mode now: it reads PROMETHEUS_MULTIPROC_DIR once, at import)
import pytest

from search_service.web.metrics import METRIC_FILE_BYTES, METRIC_FILES, MULTIPROC_ENV, Metrics


@pytest.fixture
def metrics(tmp_path, monkeypatch, seed_service):
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    return Metrics(seed_service)


def test_a_workers_metric_files_are_allocated_not_sparse(metrics, tmp_path):
    """prometheus_client maps them sparse: on a full filesystem a write to a page not yet
    backed kills the worker with SIGBUS (issue 38, 3). Allocated, every page is backed."""
    assert metrics.reserve(4242)
    for kind in METRIC_FILES:
        st = os.stat(tmp_path / f"{kind}_4242.db")
        assert st.st_size == METRIC_FILE_BYTES
        assert st.st_blocks * 512 >= METRIC_FILE_BYTES  # not a hole
    assert metrics.reserve(4242)  # a restarted worker with the same pid: nothing to do


def test_a_full_filesystem_turns_a_workers_metrics_off_not_its_searches(metrics, monkeypatch, caplog):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    assert not metrics.reserve(4243)
    assert not metrics.enabled
    assert "counts no metrics" in caplog.text and "No space left on device" in caplog.text
    metrics.observe("/search", "GET", 200, 0.001)  # nothing written, nothing raised


def test_a_method_nobody_uses_is_one_label_value(seed_service, monkeypatch):
    """Any token is a method to HTTP: each would otherwise be a series (and file space) of its own."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    metrics = Metrics(seed_service)
    for n in range(50):
        metrics.observe("(unmatched)", f"FOO{n}", 405, 0.001)
    metrics.observe("/search", "GET", 200, 0.001)
    methods = {s.labels["method"] for m in metrics.requests.collect() for s in m.samples}
    assert methods == {"other", "GET"}


def test_metrics_read_while_a_worker_allocates_its_files_never_fail(metrics, tmp_path, monkeypatch):
    """/metrics reads every worker's *.db file; one being allocated must not be among them
    (an empty file made the reader fail: a 500 at /metrics while a worker started)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    seen = []
    allocate = os.posix_fallocate

    def slow(fd, offset, length):
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        seen.append(list(registry.collect()))  # raised struct.error on an empty counter_<pid>.db
        allocate(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", slow)
    assert metrics.reserve(4244)
    assert len(seen) == len(METRIC_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{kind}_4244.db" for kind in sorted(METRIC_FILES)]
