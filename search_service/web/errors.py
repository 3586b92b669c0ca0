"""The web edge of errors: every error leaves in one shape, through one place.

``{"error": {"status": 400, "code": "missing_query", "message": "…"}}`` for
API clients, an HTML page for browsers. The core's errors
(:mod:`search_service.errors`) get their HTTP status here, from their class;
Werkzeug's (404, 405, 413, 429) and unexpected ones are mapped alike.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from search_service.errors import ConfigError, IndexLocked, IndexUnavailable, InvalidRequest, NotFound, SearchError
from search_service.web.html import render_page, wants_html

log = logging.getLogger(__name__)

# The HTTP status of each core error; anything else the core raises is a 500.
STATUS: dict[type[SearchError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    IndexLocked: 409,
    IndexUnavailable: 503,
    ConfigError: 500,
}
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "rate_limited",
}
_HTTP_MESSAGES = {
    404: "no such endpoint; see /openapi.json",
    413: "request body too large",
    429: "too many requests; retry after the number of seconds in Retry-After",
}


def status_for(exc: SearchError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, code: str, message: str) -> Response:
    if wants_html():
        return current_app.make_response(render_page("error.html", status, message=message))
    response = jsonify({"error": {"status": status, "code": code, "message": message}})
    response.status_code = status
    return response


def _search_error(exc: SearchError) -> Response:
    return error_response(status_for(exc), exc.code, exc.message)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    response = error_response(status, code, _HTTP_MESSAGES.get(status, exc.description or exc.name))
    for header in ("Allow", "Retry-After"):
        if exc.get_response().headers.get(header):
            response.headers[header] = exc.get_response().headers[header]
    return response


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unexpected error")
    return error_response(500, "internal_error", "internal error; see the server log")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(SearchError, _search_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
