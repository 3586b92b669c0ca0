"""Domain errors of the search service.

The core raises these with a stable ``code`` (machine readable) and a human
message, nothing else: what an error means to a client is decided at the
edges, each in one place (``web/errors.py`` maps them to HTTP statuses,
``cli.py`` to exit codes).
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error the service reports to a user."""

    code = "search_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(SearchError):
    """The client sent a query or parameter we cannot accept."""

    code = "invalid_request"


class ConfigError(SearchError):
    """A setting has a value the service cannot use (a bad ``SEARCH_*`` variable)."""

    code = "bad_setting"


class NotFound(SearchError):
    """A document, passage or route that does not exist."""

    code = "not_found"


class IndexUnavailable(SearchError):
    """No usable index version: never built, missing or corrupt."""

    code = "index_unavailable"


class VersionGone(IndexUnavailable):
    """The version being searched was removed (a newer one is current)."""


class VersionDamaged(IndexUnavailable):
    """The version being searched can no longer be read (its files changed on disk);
    unlike an engine that does not answer for a while, it will not come back."""


class CorpusError(SearchError):
    """The corpus folder itself cannot be read (missing, not a folder, unreadable)."""

    code = "corpus_error"


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


class BuildError(SearchError):
    """A reindex failed; the previous version stays current."""

    code = "build_failed"
