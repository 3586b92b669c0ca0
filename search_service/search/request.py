"""A search request, validated: what the web layer, the CLI and the evaluation build."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from search_service.errors import InvalidRequest
from search_service.fields import is_filter_key
from search_service.settings import Settings
from search_service.text.syntax import parse_query


@dataclass(frozen=True)
class SearchRequest:
    """A validated search: build with :meth:`create`, which raises InvalidRequest."""

    q: str
    size: int = 10
    page: int = 1
    doc: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    collapse: str | None = None

    @classmethod
    def create(cls, settings: Settings, q: Any = None, size: Any = None, page: Any = None,
               doc: Any = None, filters: Any = None, collapse: Any = None) -> "SearchRequest":
        if q is None or not isinstance(q, str) or not q.strip():
            raise InvalidRequest("parameter 'q' is required and must be a non-empty string", code="missing_query")
        q = clean_text(q)
        if len(q) > settings.max_query_chars:
            raise InvalidRequest(f"parameter 'q' is longer than {settings.max_query_chars} characters", code="query_too_long")
        size_v = int_param("size", size, 10, 1, settings.max_page_size)
        page_v = int_param("page", page, 1, 1, None)
        if size_v * page_v > settings.max_page_depth:
            raise InvalidRequest(f"page x size must be at most {settings.max_page_depth}", code="page_too_deep")
        docs = _str_list("doc", doc)
        pairs = []
        if filters is not None and not isinstance(filters, dict):
            raise InvalidRequest("parameter 'filters' must be an object of key: value or [values]", code="bad_filter")
        for key, value in (filters or {}).items():
            if not is_filter_key(key):
                raise InvalidRequest(f"filter key {key!r} must be 1-40 letters, digits or '_'", code="bad_filter")
            for v in _str_list(key, value):
                pairs.append((key, v))
        if len(docs) + len(pairs) > settings.max_filter_values:
            raise InvalidRequest(f"at most {settings.max_filter_values} doc ids and filter values together",
                                 code="too_many_filters")
        constraining = sum(1 for c in parse_query(q) if c.kind == "phrase" or c.occur != "should")
        if constraining > settings.max_query_clauses:
            raise InvalidRequest(f"at most {settings.max_query_clauses} phrases, +required and -excluded clauses "
                                 "in a query", code="too_many_clauses")
        if collapse not in (None, "", "doc", "none"):
            raise InvalidRequest("parameter 'collapse' must be 'doc' or 'none'", code="bad_parameter")
        return cls(q, size_v, page_v, tuple(docs), tuple(pairs), "doc" if collapse == "doc" else None)


_INTEGER = re.compile(r"[+-]?[0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace lone surrogates (valid in JSON, not in UTF-8) with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def int_param(name: str, value: Any, default: int, lo: int, hi: int | None) -> int:
    if value is None or value == "":
        return default
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _INTEGER.fullmatch(text):  # refuses floats, booleans, "1e3", "+-5", "²"
        raise InvalidRequest(f"parameter {name!r} must be an integer", code="bad_parameter")
    number = int(text)
    if number < lo or (hi is not None and number > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidRequest(f"parameter {name!r} must be {bound}", code="bad_parameter")
    return number


def _str_list(name: str, value: Any) -> list[str]:
    if value is None or value == "":
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise InvalidRequest(f"parameter {name!r} must be a string or a list of strings", code="bad_parameter")
        if str(v) != "":
            out.append(v if isinstance(v, str) else str(v))
    return out


