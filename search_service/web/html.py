"""Rendering HTML for people: the page templates, and whether a request wants them."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request


def wants_html() -> bool:
    """A browser navigating (Accept prefers HTML over JSON), not an API client."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]


def render_page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    settings = current_app.extensions["settings"]
    return render_template(template, max_query_chars=settings.max_query_chars, **context), status
