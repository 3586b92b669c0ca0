"""Domain errors of the search service.

The core raises these; the edges (HTTP handler, CLI) map them to a status code
or an exit code in exactly one place each. Every error has a stable ``code``
(machine readable) and a human message.
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error the service reports to a user."""

    code = "search_error"
    status = 500  # HTTP status at the web edge
    exit_code = 1  # process exit code at the CLI edge

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(SearchError):
    """The client sent a query or parameter we cannot accept."""

    code = "invalid_request"
    status = 400
    exit_code = 2


class NotFound(SearchError):
    """A document, passage or route that does not exist."""

    code = "not_found"
    status = 404
    exit_code = 1


class IndexUnavailable(SearchError):
    """No usable index version: never built, missing or corrupt."""

    code = "index_unavailable"
    status = 503
    exit_code = 1


class CorpusError(SearchError):
    """The corpus folder itself cannot be read (missing, not a folder, unreadable)."""

    code = "corpus_error"
    exit_code = 1


class DocumentError(SearchError):
    """One corpus file or record cannot be read; it is reported and skipped."""

    code = "bad_document"

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class IndexLocked(SearchError):
    """Another reindex holds the index lock."""

    code = "index_locked"
    status = 409
    exit_code = 3


class BuildError(SearchError):
    """A reindex failed; the previous version stays current."""

    code = "build_failed"
    exit_code = 1
