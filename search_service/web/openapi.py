"""The OpenAPI 3.1 description of the HTTP API.

Parameters and the request body come from the models that validate requests
(:mod:`search_service.search.request`); response schemas from the dataclasses
the core returns, through pydantic. The document cannot drift from the server:
a schemathesis run against a live server is part of the test suite.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any, Literal

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from search_service import __version__
from search_service.search.request import Params, analyze_params, document_params, page_params, search_params
from search_service.search.results import DocumentRecord, PassageRecord, SearchResult
from search_service.settings import Settings


class ErrorBody(TypedDict):
    status: int
    code: str
    message: str


class ErrorResponse(TypedDict):
    error: ErrorBody


class Health(TypedDict, total=False):
    status: Literal["ok", "degraded"]
    version: str
    passages: int
    warning: str


class Stats(TypedDict):
    version: str
    created: str
    documents: int
    passages: int
    skipped: int
    analysis: dict[str, Any]
    synonym_groups: int
    filter_keys: list[str]
    index_bytes: int


class TermTrace(TypedDict):
    term: str
    start: int
    end: int
    position: int
    original: str


class WordReadingTrace(TypedDict):
    word: str
    pinyin: str
    others: list[str]


class AnalyzeTrace(TypedDict):
    original: str
    normalized: str
    opencc_config: str
    words: list[TermTrace]
    stopwords: list[TermTrace]
    grams: list[TermTrace]
    pairs: list[TermTrace]
    readings: list[WordReadingTrace]
    synonyms: dict[str, list[str]]
    query: str


_MODELS: dict[str, Any] = {
    "SearchResult": SearchResult,
    "Document": DocumentRecord,
    "Passage": PassageRecord,
    "Health": Health,
    "Stats": Stats,
    "AnalyzeTrace": AnalyzeTrace,
    "Error": ErrorResponse,
}


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for name, model in _MODELS.items():
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(def_name, definition)
        schemas[name] = schema
    return schemas


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


def _errors(settings: Settings, *statuses: int, public: bool = False) -> dict[str, Any]:
    """The error responses of an operation; 401 and 429 when keys and a rate limit are set."""
    text = {
        400: "invalid parameters",
        401: "missing or wrong API key",
        404: "not found",
        405: "method not allowed",
        413: "request body too large",
        429: "rate limit exceeded",
        503: "no usable index",
        414: "request line over 8,190 bytes (answered by the HTTP server; every request the parameters "
        "allow fits, use POST /search for long lists)",
        431: "a request header over 8,190 bytes, or over 100 headers (answered by the HTTP server)",
    }
    statuses += (414, 431)
    if settings.api_keys and not public:
        statuses += (401,)
    if settings.rate_limit and not public:
        statuses += (429,)
    return {str(s): _json("Error", text[s]) for s in sorted(statuses)}


def query_parameters(model: type[Params]) -> list[dict[str, Any]]:
    """A parameters model as OpenAPI query parameters (lists as repeated parameters)."""
    schema = model.model_json_schema()
    params = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)}
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in schema.get("required", ())}
        if "description" in prop:
            param["description"] = prop.pop("description")
        if prop.get("type") == "array":
            param.update(style="form", explode=True)
        params.append({**param, "schema": prop})
    return params


HTML = {"text/html": {"schema": {"type": "string"}}}


def _filter_schema(prop: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    """The schema of ``filter`` with the keys the served index has (a key no document
    has is refused, so the document says which are allowed)."""
    if keys is None:
        return prop
    prop = copy.deepcopy(prop)
    if keys:
        prop["items"]["pattern"] = "^(" + "|".join(re.escape(k) for k in keys) + "):[\\s\\S]"
    else:
        prop["maxItems"] = 0
    return prop


@functools.lru_cache(maxsize=8)
def openapi_document(settings: Settings, filter_keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The OpenAPI document for these settings and the served index's filter keys:
    parameters from the same models that validate requests, with these settings'
    limits; security when keys are set."""
    search_model = search_params(settings)
    search_schema = search_model.model_json_schema()
    search_schema["properties"]["filter"] = _filter_schema(search_schema["properties"]["filter"], filter_keys)
    search_query = [
        {**p, "schema": _filter_schema(p["schema"], filter_keys)} if p["name"] == "filter" else p
        for p in query_parameters(search_model)
    ]
    components: dict[str, Any] = {"schemas": {**_components(), "SearchParams": search_schema}}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "中文全文检索 search-service",
            "version": __version__,
            "description": "Ranked, highlighted passages for Chinese queries in simplified or traditional "
            "script. Unknown parameters are refused (400 unknown_parameter); query strings "
            "must be UTF-8 (400 bad_encoding).",
        },
        "paths": {**_search_paths(settings, search_query), **_record_paths(settings), **_other_paths(settings)},
        "components": components,
    }
    if settings.api_keys:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        doc["security"] = [{"bearer": []}, {"apiKey": []}]
        for path in ("/health", "/favicon.ico") + (("/",) if settings.public_page else ()):
            doc["paths"][path]["get"]["security"] = []
    return doc


def _search_paths(settings: Settings, search_query: list[dict[str, Any]]) -> dict[str, Any]:
    """The page and /search: what people and clients search with."""
    return {
        "/": {
            "get": {
                "summary": "The search page for people (HTML)",
                "operationId": "page",
                "parameters": query_parameters(page_params(settings)),
                "responses": {
                    "200": {"description": "results page", "content": HTML},
                    "400": {"description": "the page, with a message about the bad query", "content": HTML},
                    **(
                        {"401": {"description": "a page saying a key is needed", "content": HTML}}
                        if settings.api_keys and not settings.public_page
                        else {}
                    ),
                    **({"429": _json("Error", "rate limit exceeded")} if settings.rate_limit else {}),
                    "503": {"description": "the page, saying the index is unavailable", "content": HTML},
                    **_errors(settings, public=True),
                },
            }
        },
        "/search": {
            "get": {
                "summary": "Search passages",
                "operationId": "search",
                "parameters": search_query,
                "responses": {"200": _json("SearchResult", "ranked passages"), **_errors(settings, 400, 503)},
            },
            "post": {
                "summary": "Search passages (JSON body)",
                "operationId": "searchPost",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchParams"}}},
                },
                "responses": {"200": _json("SearchResult", "ranked passages"), **_errors(settings, 400, 413, 503)},
            },
        },
    }


def _record_paths(settings: Settings) -> dict[str, Any]:
    """A document with a page of its passages, and one passage."""
    return {
        "/documents/{doc_id}": {
            "get": {
                "summary": "A document and a page of its passages (a readable page when the client prefers HTML)",
                "operationId": "document",
                "parameters": [
                    {"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    *query_parameters(document_params(settings)),
                ],
                "responses": {
                    "200": {
                        "description": "the document",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Document"}}, **HTML},
                    },
                    **_errors(settings, 400, 404, 503),
                },
            }
        },
        "/passages/{passage_id}": {
            "get": {
                "summary": "One passage",
                "operationId": "passage",
                "parameters": [{"name": "passage_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("Passage", "the passage"), **_errors(settings, 400, 404, 503)},
            }
        },
    }


def _other_paths(settings: Settings) -> dict[str, Any]:
    """The analysis trace, health, statistics, the icon, this document and the metrics."""
    return {
        "/analyze": {
            "get": {
                "summary": "How a text is normalized and segmented",
                "operationId": "analyze",
                "parameters": query_parameters(analyze_params(settings)),
                "responses": {"200": _json("AnalyzeTrace", "the analysis trace"), **_errors(settings, 400, 503)},
            }
        },
        "/health": {
            "get": {
                "summary": "Is an index being served (no key needed)",
                "operationId": "health",
                "responses": {"200": _json("Health", "serving"), **_errors(settings, 400, 503, public=True)},
            }
        },
        "/stats": {
            "get": {
                "summary": "Index statistics",
                "operationId": "stats",
                "responses": {"200": _json("Stats", "statistics"), **_errors(settings, 400, 503)},
            }
        },
        "/favicon.ico": {
            "get": {
                "summary": "The page's icon (SVG, no key needed)",
                "operationId": "favicon",
                "responses": {
                    "200": {"description": "the icon", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                    **_errors(settings, 400, public=True),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(settings, 400),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "operationId": "metrics",
                "responses": {
                    "200": {"description": "the metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_errors(settings, 400),
                },
            }
        },
    }
