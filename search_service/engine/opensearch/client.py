"""The cluster connection: one opensearch-py client per process, and cluster failures as our errors.

A call to the cluster has a total time budget (``SEARCH_OPENSEARCH_TIMEOUT``), shared
by its attempts on every node, each given half of it at most: opensearch-py gave each
attempt the whole timeout, so a hung cluster took three of them, as long as a worker's
request time limit. A call
that fails on every node opens an outage: until the next check (one call, after a
backoff doubling up to ``SEARCH_OPENSEARCH_RETRY_SECONDS``), calls fail at once
without reaching for the cluster, and the outage's start and end are logged once each.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from opensearchpy import OpenSearch, Transport, Urllib3HttpConnection
from opensearchpy import exceptions as ox

from search_service.errors import IndexUnavailable, VersionGone
from search_service.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)
# The deadline of the cluster call this thread is making (set by _GuardedTransport).
_call = threading.local()


def make_client(settings: Settings) -> OpenSearch:
    """A client that knows every node: a request that fails on one (connection
    refused, timeout, 502/503/504) is sent again to another, within one time budget."""
    urls = [u.strip() for u in settings.opensearch_urls.split(",") if u.strip()]
    options: dict[str, Any] = {
        "hosts": urls,
        # An attempt gets half the budget at most: after a hung node, another has time to answer.
        "timeout": settings.opensearch_timeout / 2,
        "max_retries": max(2, len(urls)),
        "retry_on_timeout": True,
        "retry_on_status": (502, 503, 504),
        "http_compress": False,
        "pool_maxsize": 16,  # connections kept per node: threads of a process share the client
        "transport_class": _GuardedTransport,
        "connection_class": _BudgetConnection,
        "outage": Outage(settings.opensearch_retry_seconds),
        "budget": settings.opensearch_timeout,
    }
    if settings.opensearch_user:
        options["http_auth"] = (settings.opensearch_user, settings.opensearch_password)
    if any(u.startswith("https:") for u in urls):
        options["use_ssl"] = True
        options["verify_certs"] = settings.opensearch_verify_certs.lower() not in ("false", "0", "no")
        if settings.opensearch_ca_certs:
            options["ca_certs"] = settings.opensearch_ca_certs
        if not options["verify_certs"]:
            options["ssl_show_warn"] = False
    return OpenSearch(**options)


class ClusterDown(ox.ConnectionError):
    """A call refused without reaching for the cluster: it is in an outage until the next check."""


class _BudgetSpent(ox.TransportError):
    """The call's budget ran out before another attempt (not retried: no node is to blame)."""


class Outage:
    """Whether the cluster is down, as this process last saw it. The first call to fail on
    every node starts an outage (logged once); then one call a backoff (doubling from 0.5 s
    to ``longest``) is let through as the check, the others fail at once; the first to
    succeed ends it (logged once)."""

    FIRST = 0.5

    def __init__(self, longest: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.longest = longest
        self._clock = clock
        self._lock = threading.Lock()
        self.since: float | None = None
        self._backoff = self.FIRST
        self._next_check = 0.0
        self._reason = ""

    def admit(self) -> None:
        """Raises ClusterDown unless the cluster is up or this call is the next check."""
        if self.since is None:
            return
        with self._lock:
            now = self._clock()
            if self.since is not None and now < self._next_check:
                raise ClusterDown(
                    "N/A", f"{self._reason}; the next check in {self._next_check - now:.1f} s", None
                )
            self._next_check = now + self._backoff  # this call is the check: the others still fail fast

    def failed(self, reason: str) -> None:
        with self._lock:
            now = self._clock()
            if self.since is None:
                self.since, self._backoff, self._reason = now, self.FIRST, reason
                log.error("the OpenSearch cluster is unavailable (%s): answering 503 until it is back", reason)
            else:
                self._backoff = min(self._backoff * 2, self.longest)
            self._next_check = now + self._backoff

    def answered(self) -> None:
        if self.since is None:
            return
        with self._lock:
            if self.since is not None:
                log.warning("the OpenSearch cluster answers again, after %.1f s", self._clock() - self.since)
                self.since = None


class _GuardedTransport(Transport):
    """opensearch-py's transport, each call within one budget and refused at once in an outage."""

    def __init__(self, hosts: Any, *, outage: Outage, budget: float, **kwargs: Any) -> None:
        super().__init__(hosts, **kwargs)
        self.outage = outage
        self.budget = budget

    def perform_request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
        ignore: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        self.outage.admit()
        # A call that asks for longer (a build's bulk load, a wait for the cluster's
        # health) gets that long in all.
        asked = timeout or (params or {}).get("request_timeout")
        budget = max(self.budget, float(asked)) if asked else self.budget
        outer = getattr(_call, "deadline", None)
        if outer is None:
            _call.deadline = time.monotonic() + budget
        try:
            result = super().perform_request(method, url, params, body, timeout, ignore, headers)
        except _BudgetSpent:
            self.outage.failed("no node answered in time")
            raise ox.ConnectionTimeout("TIMEOUT", "no node answered within the time budget", None) from None
        except ox.ConnectionTimeout:
            self.outage.failed("no node answered in time")
            raise
        except ox.ConnectionError as exc:
            self.outage.failed(f"no node can be reached: {exc.error}")
            raise
        except ox.TransportError as exc:
            if exc.status_code in (502, 503, 504):
                self.outage.failed(f"every node answered {exc.status_code}")
            raise
        finally:
            if outer is None:
                _call.deadline = None
        self.outage.answered()
        return result


class _BudgetConnection(Urllib3HttpConnection):
    """One node; an attempt gets what is left of its call's budget. A failed attempt is
    not logged (opensearch-py logs each with a traceback): the call's error says what
    failed, an outage is logged once, a node taken out of rotation by the pool."""

    def log_request_fail(self, method: str, full_url: str, path: str, body: Any, duration: float,
                         status_code: int | None = None, response: str | None = None,
                         exception: Exception | None = None) -> None:
        log.debug("%s %s failed [status:%s request:%.3fs]", method, full_url, status_code or "N/A", duration)

    def perform_request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        ignore: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        deadline = getattr(_call, "deadline", None)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0.01:
                raise _BudgetSpent("N/A", "the time budget is spent", None)
            timeout = min(timeout or self.timeout, left)
        return super().perform_request(method, url, params, body, timeout, ignore, headers)


def unavailable(exc: Exception) -> IndexUnavailable:
    """Our error for a cluster failure; never the credentials (opensearch-py's messages carry none)."""
    if isinstance(exc, ox.NotFoundError):
        return VersionGone(f"the OpenSearch index is gone: {_reason(exc)}")
    if isinstance(exc, ClusterDown):
        return IndexUnavailable(f"the OpenSearch cluster is unavailable: {exc.error}")
    if isinstance(exc, ox.ConnectionTimeout):
        return IndexUnavailable("the OpenSearch cluster did not answer in time")
    if isinstance(exc, ox.ConnectionError):
        return IndexUnavailable("the OpenSearch cluster cannot be reached")
    if isinstance(exc, ox.AuthenticationException | ox.AuthorizationException):
        return IndexUnavailable(f"the OpenSearch cluster refused our credentials ({exc.status_code})")
    return IndexUnavailable(f"the OpenSearch cluster failed: {_reason(exc)}")


def guarded(call: Callable[..., T]) -> Callable[..., T]:
    """Turns a cluster failure inside ``call`` into IndexUnavailable (a 503 at the web edge)."""

    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return call(*args, **kwargs)
        except (ox.TransportError, ox.ImproperlyConfigured) as exc:
            raise unavailable(exc) from None

    return wrapper


def _reason(exc: Exception) -> str:
    if isinstance(exc, ox.TransportError):
        info = exc.info if isinstance(exc.info, dict) else {}
        error = info.get("error")
        if isinstance(error, dict):
            return f"{exc.status_code} {error.get('type')}: {error.get('reason')}"
        return f"{exc.status_code} {exc.error}"
    return str(exc)
