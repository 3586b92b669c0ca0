"""Serving the app with gunicorn (pre-fork, sync workers).

Why gunicorn: each request is CPU-bound Python (jieba, Whoosh), so threads
would serve one request at a time under the GIL; pre-forked worker processes
use every core, a stuck worker is restarted after ``--timeout``, and with
``preload_app`` jieba's dictionary is loaded once in the master and shared by
the workers copy-on-write.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from search_service.errors import IndexUnavailable
from search_service.settings import Settings
from search_service.web.app import create_app

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def gunicorn_options(host: str, port: int, workers: int, timeout: int) -> dict[str, Any]:
    """gunicorn's settings; ``timeout`` is the request time limit (a stuck worker is killed and replaced)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "preload_app": True,
        "timeout": timeout,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 2, timeout: int = 30) -> int:
    """Run the API until interrupted. Exits 1 at once when there is no index."""
    access = logging.getLogger("search_service.access")
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
    app = create_app(settings.__dict__)
    service = app.extensions["search"]
    try:
        # Open the index once in the master: fails fast without an index, and
        # loads jieba's dictionary before the workers fork.
        service.current()
    except IndexUnavailable as exc:
        print(f"search-service serve: {exc.message}", file=sys.stderr)
        return 1
    # Workers must not share the master's open files (one seek pointer for all):
    # each opens its own right after it is forked, before its first request.
    service.close()

    def open_index_in_worker(worker: Any) -> None:
        try:
            service.current()
        except IndexUnavailable as exc:
            # A worker that cannot open any version must still boot: gunicorn
            # stops the whole server when a worker fails to, taking the healthy
            # ones with it. This one answers 503 with the reason, and opens a
            # version as soon as one can be read.
            log.error("worker %s serves no index yet: %s", worker.pid, exc.message)

    # Objects loaded so far (jieba's dictionary above all) live as long as the
    # process: move them out of the garbage collector's reach, or each
    # worker's first full collection writes to every page holding one and so
    # copies the master's memory page by page (copy-on-write).
    gc.freeze()
    options = gunicorn_options(host, port, workers, timeout)
    options["post_worker_init"] = open_index_in_worker
    _Gunicorn(app, options).run()
    return 0
