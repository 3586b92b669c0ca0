"""Work on every core: one forked process per share of the corpus, for any engine's build.

Forked, so that each process inherits what the parent loaded (jieba's
dictionary above all) and the share itself, a lazy iterator made in the parent.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable, Sequence
from typing import Any

from search_service.engine.base import WriteProgress

# work(share number, share, count) -> a picklable result; count(n) reports n more passages done.
Work = Callable[[int, Any, Callable[[int], None]], Any]


class ShareFailed(Exception):
    """A share's process failed (its error, or it died); the others were stopped."""


def available(shares: Sequence[Any]) -> bool:
    """Whether ``shares`` are worth, and can be given, processes of their own."""
    return len(shares) > 1 and "fork" in multiprocessing.get_all_start_methods()


def run_shares(work: Work, shares: Sequence[Any], progress: WriteProgress | None = None) -> list[Any]:
    """``work`` on each share in a forked process of its own; each share's result, in order.

    ``progress(done)`` is called with the passages all processes have counted.
    A process whose parent is gone (the build was killed) stops at its next count.
    """
    ctx = multiprocessing.get_context("fork")
    done = ctx.Value("q", 0)
    results: Any = ctx.Queue()
    parent = os.getpid()
    procs = [
        ctx.Process(target=_child, args=(work, i, share, done, results, parent), daemon=True)
        for i, share in enumerate(shares)
    ]
    # What the parent holds (jieba's dictionary, the corpus) is shared with the children
    # until written to; the garbage collector's passes over it would write to every
    # page and so copy it into each child. Frozen, it is left alone.
    gc.freeze()
    try:
        for p in procs:
            p.start()
    finally:
        gc.unfreeze()
    found: dict[int, Any] = {}
    failures: list[str] = []
    try:
        while len(found) + len(failures) < len(procs):
            try:
                number, result, error = results.get(timeout=0.2)
            except queue.Empty:
                if progress is not None:
                    progress(done.value)
                if not any(p.is_alive() for p in procs) and results.empty():
                    failures.append("a process died")
                continue
            if error:
                failures.append(error)
            else:
                found[number] = result
        if progress is not None:
            progress(done.value)
    finally:
        for p in procs:
            if p.is_alive() and failures:
                p.kill()
            p.join()
    if failures:
        raise ShareFailed(failures[0])
    return [found[i] for i in range(len(procs))]


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies: a killed build's
    processes must not keep running (nor hold the build lock they inherited)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the count() check below still stops it
        pass


_PR_SET_PDEATHSIG = 1


def _child(work: Work, number: int, share: Any, done: Any, results: Any, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def count(n: int) -> None:
        with done.get_lock():
            done.value += n
        if os.getppid() != parent:  # the build was killed: stop
            os._exit(1)

    try:
        results.put((number, work(number, share, count), None))
    except BaseException as exc:  # noqa: BLE001  (reported to the parent, which fails the build)
        results.put((number, None, f"{type(exc).__name__}: {exc}"))
