"""The on-disk layout of an index root (see :mod:`.engine`): versions, the
CURRENT pointer, the build lock.

A version directory without ``manifest.json`` is a build that never finished;
it is never served and the next reindex removes it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from search_service.errors import BuildError, IndexLocked, IndexUnavailable

POINTER = "CURRENT"
LOCKFILE = ".reindex.lock"
MANIFEST = "manifest.json"
DOCUMENTS = "documents.json"  # per document: content hash, source, passage count
GROUPS = "groups.npy"  # per passage: its document as a small integer (collapse=doc)
ORDER = "order.npy"  # per passage: its place in the corpus (ties go to the earlier), when not its number


class IndexRoot:
    """An index root folder and its versions."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.pointer = self.root / POINTER

    def new_version_dir(self) -> Path:
        # Names sort in creation order (microseconds), which clean() relies on.
        now = time.time()
        micros = int(now * 1_000_000) % 1_000_000
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{micros:06d}-" + uuid.uuid4().hex[:4]
        existing = [p.name for p in self.versions_dir.iterdir()] if self.versions_dir.is_dir() else []
        if existing and name <= max(existing):  # a clock step backwards
            name = max(existing).split("-")[0] + "0-" + uuid.uuid4().hex[:4]
        path = self.versions_dir / name
        try:
            path.mkdir(parents=True)
        except OSError as exc:  # read-only folder, disk full
            raise BuildError(
                f"cannot create a new version in {str(self.versions_dir)!r}: {exc.strerror}; "
                "the previous version stays current"
            ) from None
        return path

    def current_name(self) -> str | None:
        try:
            name = self.pointer.read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexUnavailable(f"cannot read {self.pointer}: {exc.strerror}") from None
        return name or None

    def current_dir(self) -> Path:
        """The served version's folder; IndexUnavailable if there is none."""
        name = self.current_name()
        if name is None:
            raise IndexUnavailable(f"no index in {str(self.root)!r}: run `search-service reindex` first")
        path = self.versions_dir / name
        if not (path / MANIFEST).is_file():
            raise IndexUnavailable(f"index version {name!r} is missing or incomplete")
        return path

    def manifest(self, version_dir: Path) -> dict[str, Any]:
        try:
            manifest: dict[str, Any] = json.loads((version_dir / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexUnavailable(f"index version {version_dir.name!r} has an unreadable manifest: {exc}") from None
        return manifest

    def switch(self, version_dir: Path) -> None:
        """Make ``version_dir`` current, atomically (readers see old or new, never neither)."""
        tmp = self.root / f".{POINTER}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(version_dir.name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.pointer)
        _fsync_dir(self.root)

    def complete_versions(self) -> list[Path]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p for p in self.versions_dir.iterdir() if (p / MANIFEST).is_file())

    def clean(self, keep: int) -> list[str]:
        """Remove unfinished builds and complete versions beyond the newest ``keep``
        (never the current one). Call only while holding the lock."""
        removed: list[str] = []
        if not self.versions_dir.is_dir():
            return removed
        current = self.current_name()
        complete = self.complete_versions()
        keep_set = {p.name for p in complete[-max(keep, 1) :]}
        if current:
            keep_set.add(current)
        for path in sorted(self.versions_dir.iterdir()):
            if path.name not in keep_set:
                _remove_version(path)
                removed.append(path.name)
        for stray in self.root.glob(f".{POINTER}.*"):
            stray.unlink(missing_ok=True)
        return removed

    def discard_unfinished(self) -> list[str]:
        """Remove the folders of builds that never finished (a killed reindex's, or a
        killed cleanup's): what a new build must not have to make room beside. Call only
        while holding the lock."""
        if not self.versions_dir.is_dir():
            return []
        current = self.current_name()
        removed = []
        for path in sorted(self.versions_dir.iterdir()):
            if path.name != current and not (path / MANIFEST).is_file():
                _remove_version(path)
                removed.append(path.name)
        return removed

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the reindex lock: acquired at once or IndexLocked (released on exit, even SIGKILL)."""
        lock = FileLock(str(self.root / LOCKFILE), timeout=0)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            raise IndexLocked(f"another reindex is running on {str(self.root)!r}; try again when it ends") from None
        except OSError as exc:  # read-only folder, disk full
            raise BuildError(f"cannot take the reindex lock in {str(self.root)!r}: {exc.strerror}") from None
        try:
            yield
        finally:
            lock.release()


def _remove_version(path: Path) -> None:
    """Remove a version's folder, its manifest first (made durable): a removal killed
    part way leaves an unfinished build, which the next reindex removes, never a
    version that looks complete and cannot be read."""
    try:
        (path / MANIFEST).unlink(missing_ok=True)
        _fsync_dir(path)
    except OSError:
        pass  # not a folder, or already going: rmtree decides
    shutil.rmtree(path, ignore_errors=True)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_items(path: Path, items: Iterable[tuple[str, Any]]) -> None:
    """A JSON object of ``items``, written one item at a time (a million documents' records
    are never one dict or one string), then moved into place."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        separator = "{\n"
        for key, value in items:
            fh.write(
                f"{separator}{json.dumps(key, ensure_ascii=False)}: "
                f"{json.dumps(value, ensure_ascii=False, sort_keys=True)}"
            )
            separator = ",\n"
        fh.write("{}\n" if separator == "{\n" else "\n}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
