"""The cluster connection: one opensearch-py client per process, and cluster failures as our errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from opensearchpy import OpenSearch
from opensearchpy import exceptions as ox

from search_service.errors import IndexUnavailable, VersionGone
from search_service.settings import Settings

T = TypeVar("T")


def make_client(settings: Settings) -> OpenSearch:
    """A client that knows every node: a request that fails on one (connection
    refused, timeout, 502/503/504) is sent again to another."""
    urls = [u.strip() for u in settings.opensearch_urls.split(",") if u.strip()]
    options: dict[str, Any] = {
        "hosts": urls,
        "timeout": settings.opensearch_timeout,
        "max_retries": max(2, len(urls)),
        "retry_on_timeout": True,
        "retry_on_status": (502, 503, 504),
        "http_compress": False,
        "pool_maxsize": 16,  # connections kept per node: threads of a process share the client
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


def unavailable(exc: Exception) -> IndexUnavailable:
    """Our error for a cluster failure; never the credentials (opensearch-py's messages carry none)."""
    if isinstance(exc, ox.NotFoundError):
        return VersionGone(f"the OpenSearch index is gone: {_reason(exc)}")
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
