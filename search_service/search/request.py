"""What a client may ask, declared once: pydantic models of every endpoint's parameters.

The same declarations validate a URL's query string, a JSON body and the
core's Python callers, and generate the OpenAPI document's parameters and
request body (:mod:`search_service.web.openapi`), so the document and the
server cannot disagree. Limits come from :class:`Settings`; a model is built
once per settings. Unknown parameters are refused, never ignored: a typo
(``sise``) would otherwise be answered as if it were absent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from search_service.errors import InvalidRequest
from search_service.fields import FILTER_KEY
from search_service.settings import Settings
from search_service.text.syntax import parse_query

# Whitespace as Python, ECMAScript (the OpenAPI document's regexes) and Rust
# (pydantic's) all agree on it, spelled out: their \s classes differ (U+0085, U+FEFF).
_SPACE = r"\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
VISIBLE = f"[^{_SPACE}]"  # a text holding at least one character that is not whitespace
FILTER_ITEM = f"^{FILTER_KEY}:[\\s\\S]"  # key:value, the key as jsonl metadata keys may be
ID_CHARS = 512  # the longest doc id a request may name
MAX_ORDINAL = 10**9  # more passages than any document has


class Params(BaseModel):
    """Base of every endpoint's parameters: unknown names are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@functools.lru_cache(maxsize=16)
def search_params(settings: Settings) -> type[Params]:
    """The parameters of /search, with these settings' limits (GET and POST alike)."""
    limit = settings.max_filter_values
    fields: dict[str, Any] = {
        "q": (
            Annotated[
                str,
                Field(
                    min_length=1,
                    max_length=settings.max_query_chars,
                    pattern=VISIBLE,
                    description='The query. Operators: "phrase", +must, -exclude.',
                ),
            ],
            ...,
        ),
        "size": (Annotated[int, Field(ge=1, le=settings.max_page_size, description="Hits a page.")], 10),
        "page": (
            Annotated[
                int,
                Field(
                    ge=1,
                    le=settings.max_page_depth,
                    description=f"Page, from 1. Only the first {settings.max_page_depth} hits "
                    "can be paged to: a page past them (or past the last hit) has "
                    "no hits; the result's `pages` says how many there are.",
                ),
            ],
            1,
        ),
        "doc": (
            Annotated[
                list[Annotated[str, Field(min_length=1, max_length=ID_CHARS)]],
                Field(max_length=limit, description="Search within these document ids."),
            ],
            [],
        ),
        "collapse": (
            Annotated[Literal["doc", "none"], Field(description="'doc': only each document's best passage.")],
            "none",
        ),
        "filter": (
            Annotated[
                list[Annotated[str, Field(pattern=FILTER_ITEM, max_length=200)]],
                Field(
                    max_length=limit,
                    description="Metadata filters, key:value (jsonl keys; /stats lists them). "
                    "Values of one key: any; different keys: all. Values are "
                    "normalized like text (traditional finds simplified).",
                ),
            ],
            [],
        ),
    }
    model: type[Params] = create_model("SearchParams", __base__=Params, **fields)
    return model


@functools.lru_cache(maxsize=16)
def page_params(settings: Settings) -> type[Params]:
    """The parameters of the search page: a blank or absent q shows the empty page."""
    search = search_params(settings).model_fields
    model: type[Params] = create_model(
        "PageParams",
        __base__=Params,
        q=(Annotated[str, Field(max_length=settings.max_query_chars, description=search["q"].description)], ""),
        page=(search["page"].rebuild_annotation(), 1),
        collapse=(search["collapse"].rebuild_annotation(), "none"),
    )
    return model


@functools.lru_cache(maxsize=16)
def document_params(settings: Settings) -> type[Params]:
    """The parameters of /documents/<id>: a page of its passages."""
    fields: dict[str, Any] = {
        "from": (Annotated[int, Field(ge=0, le=MAX_ORDINAL, description="First passage, from 0.")], 0),
        "size": (Annotated[int, Field(ge=1, le=1000, description="Passages in the page.")], 100),
        "q": (
            Annotated[
                str,
                Field(max_length=settings.max_query_chars, description="A query whose words the page marks (HTML)."),
            ],
            "",
        ),
        "hit": (
            Annotated[
                int,
                Field(
                    ge=0,
                    le=MAX_ORDINAL,
                    description="The ordinal of the passage the page scrolls to and marks (HTML).",
                ),
            ],
            None,
        ),
    }
    model: type[Params] = create_model("DocumentParams", __base__=Params, **fields)
    return model


@functools.lru_cache(maxsize=16)
def analyze_params(settings: Settings) -> type[Params]:
    """The parameters of /analyze."""
    model: type[Params] = create_model(
        "AnalyzeParams",
        __base__=Params,
        text=(
            Annotated[
                str, Field(min_length=1, max_length=settings.max_query_chars * 2, description="The text to analyze.")
            ],
            ...,
        ),
    )
    return model


@dataclass(frozen=True)
class SearchRequest:
    """A validated search: build with :meth:`create` (Python values), :meth:`from_json`
    (a JSON body) or :meth:`from_query` (a URL's parameters); each raises InvalidRequest."""

    q: str
    size: int = 10
    page: int = 1
    doc: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    collapse: str | None = None

    @classmethod
    def create(cls, settings: Settings, **params: Any) -> SearchRequest:
        """From Python values; ``None`` means absent."""
        return cls._from(
            settings, validate(search_params(settings), {k: _clean(v) for k, v in params.items() if v is not None})
        )

    @classmethod
    def from_json(cls, settings: Settings, body: Any) -> SearchRequest:
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object", code="malformed_json")
        model = search_params(settings)
        # In JSON, 2.0 is the integer 2 (JSON Schema says so too); 2.5 stays an error.
        body = {
            k: int(v) if isinstance(v, float) and v.is_integer() and _is_int(model, k) else v
            for k, v in _clean(body).items()
        }
        return cls._from(settings, validate(model, body))

    @classmethod
    def from_query(cls, settings: Settings, args: Mapping[str, list[str]]) -> SearchRequest:
        return cls._from(settings, validate_query(search_params(settings), args))

    @classmethod
    def _from(cls, settings: Settings, p: Any) -> SearchRequest:
        constraining = sum(1 for c in parse_query(p.q) if c.kind == "phrase" or c.occur != "should")
        if constraining > settings.max_query_clauses:
            raise InvalidRequest(
                f"at most {settings.max_query_clauses} phrases, +required and -excluded clauses in a query",
                code="too_many_clauses",
            )
        filters = tuple((key, value) for key, _, value in (f.partition(":") for f in p.filter))
        return cls(p.q, p.size, p.page, tuple(p.doc), filters, "doc" if p.collapse == "doc" else None)


def validate(model: type[Params], data: Mapping[str, Any]) -> Any:
    """``data`` as ``model``, strictly (1.0, "10" and true are not integers); raises InvalidRequest."""
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        raise _invalid(model, exc) from None


def validate_query(model: type[Params], args: Mapping[str, list[str]]) -> Any:
    """A URL's parameters (each name with its values) as ``model``: list fields take
    every value, others exactly one; an integer is written in ASCII digits."""
    data: dict[str, Any] = {}
    for name, values in args.items():
        field = model.model_fields.get(name)
        if field is not None and _is_list(field.annotation):
            data[name] = list(values)
        elif len(values) > 1:
            raise InvalidRequest(
                f"parameter {name!r} is given {len(values)} times; it takes one value", code="bad_parameter"
            )
        elif field is not None and field.annotation is int and _INTEGER.fullmatch(values[0]):
            data[name] = int(values[0])
        else:
            data[name] = values[0]
    return validate(model, data)


def _is_int(model: type[Params], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and field.annotation is int


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


# What each field's errors are called (the rest are bad_parameter).
_CODES = {
    ("q", "missing"): "missing_query",
    ("q", "string_too_short"): "missing_query",
    ("q", "string_pattern_mismatch"): "missing_query",
    ("q", "string_type"): "missing_query",
    ("q", "string_too_long"): "query_too_long",
    ("text", "missing"): "missing_text",
    ("text", "string_too_short"): "missing_text",
    ("text", "string_too_long"): "text_too_long",
}


def _invalid(model: type[Params], exc: ValidationError) -> InvalidRequest:
    error = exc.errors(include_url=False)[0]
    name = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(model.model_fields)
        return InvalidRequest(f"unknown parameter {name!r}; the parameters are: {allowed}", code="unknown_parameter")
    if error["type"] == "model_type":
        return InvalidRequest("the request body must be a JSON object", code="malformed_json")
    code = _CODES.get((name, error["type"]), "bad_filter" if name == "filter" else "bad_parameter")
    if code == "missing_query":
        return InvalidRequest("parameter 'q' is required and must not be blank", code=code)
    if name == "filter" and error["type"] == "string_pattern_mismatch":
        return InvalidRequest("parameter 'filter' takes key:value (a key of 1-40 letters, digits or '_')", code=code)
    return InvalidRequest(f"parameter {name!r}: {error['msg']}", code=code)


_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace lone surrogates (valid in JSON, not in UTF-8) with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _clean(value: Any) -> Any:
    """``value`` with :func:`clean_text` applied to it, or to the strings of a list, or
    to the values of an object (a body's fields), one level deep: the fields are strings
    or lists of strings, and anything nested deeper is an error anyway."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_text(v) if isinstance(v, str) else v for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) if not isinstance(v, dict) else v for k, v in value.items()}
    return value
