"""The HTTP JSON API: a thin shell over :class:`SearchService`.

Routes parse input, make one core call and format the output. Every error
leaves through :mod:`.errors`, in one shape.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote_to_bytes

import orjson
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import PathConverter

from search_service.errors import IndexUnavailable, InvalidRequest
from search_service.search.request import SearchRequest, analyze_params, document_params, validate_query
from search_service.search.service import SearchService
from search_service.settings import Settings
from search_service.web.errors import error_response, register_error_handlers
from search_service.web.html import render_page, wants_html
from search_service.web.metrics import Metrics
from search_service.web.pages import document_marks, page

log = logging.getLogger(__name__)
# One JSON line per request; keys and Authorization headers are never logged.
access_log = logging.getLogger("search_service.access")
api = Blueprint("api", __name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON responses, encoded by orjson (in C): the standard library's
    encoder took a noticeable share of a search request's CPU time under load.
    Like ``ensure_ascii=False, sort_keys=False``: UTF-8, keys in their order.
    What orjson refuses (a lone surrogate, an integer beyond 64 bits) is
    encoded by the standard library, ASCII-escaped so that a lone surrogate
    is written as ``\\ud800`` instead of failing to encode."""

    ensure_ascii = False
    sort_keys = False

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        if (self.compact is None and self._app.debug) or self.compact is False:
            return cast(Response, super().response(obj))  # indented for people reading it
        try:
            body = orjson.dumps(obj, default=self.default, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            body = self.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
        return Response(body, mimetype=self.mimetype)


class IdPathConverter(PathConverter):
    """Werkzeug's ``path`` converter (an id may hold "/"), made into a URL with its "/"
    percent-encoded: one path segment, whatever the id's dots."""

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` may hold setting names (see :class:`Settings`),
    which override ``SEARCH_*`` variables, and Flask config keys (upper case)."""
    config = dict(config or {})
    setting_names = {f.name for f in dataclasses.fields(Settings)}
    settings = Settings.from_env(**{k: v for k, v in config.items() if k in setting_names})
    app = Flask(__name__)
    app.json = JSONProvider(app)
    # Ids may contain "/" (nested corpus folders): never redirect "//" to "/",
    # which would answer a client with an HTML redirect instead of JSON.
    app.url_map.merge_slashes = False
    # Links to a document or passage encode the "/" of its id, so that a browser never
    # resolves the id's "." and ".." segments away (an id "../../x" would link elsewhere).
    # Registered after Flask's own static route, which keeps Werkzeug's converter.
    app.url_map.converters["path"] = IdPathConverter
    app.config.update({k: v for k, v in config.items() if k not in setting_names})
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    if settings.trusted_proxies:
        # Only as many X-Forwarded-* entries as there are proxies we put there are
        # believed; a client cannot choose its address by sending the header itself.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.extensions["search"] = SearchService(settings)
    app.extensions["metrics"] = Metrics(app.extensions["search"])
    app.extensions["settings"] = settings
    app.extensions["api_keys"] = tuple(k.encode("utf-8") for k in settings.api_key_list())
    if settings.rate_limit:
        from flask_limiter import Limiter  # only when asked for: slow imports
        from flask_limiter.util import get_remote_address

        # One allowance per client for the whole app, not one per route (the page and
        # the API would otherwise each give the full allowance); counted where the
        # rate_limit_storage setting says (per worker by default).
        Limiter(
            get_remote_address,
            app=app,
            application_limits=[settings.rate_limit],
            headers_enabled=True,
            storage_uri=settings.rate_limit_storage,
            application_limits_exempt_when=lambda: request.endpoint in PUBLIC_ENDPOINTS,
        )
    app.register_blueprint(api)
    app.register_blueprint(page)
    app.before_request(_start_request)
    app.before_request(_refuse_unread_body)
    app.before_request(_require_api_key)
    app.before_request(_check_encoding)
    app.before_request(_refuse_parameters)
    app.after_request(_security_headers)
    app.after_request(_log_request)
    register_error_handlers(app)
    return app


def service() -> SearchService:
    found: SearchService = current_app.extensions["search"]
    return found


# Open without a key: load balancers probe /health; the page's stylesheet and icon.
PUBLIC_ENDPOINTS = {"api.health", "static", "api.favicon"}


def _start_request() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    # Echo a client's id only when it is short and plain; never log arbitrary bytes.
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


# The pages for people: public with SEARCH_PUBLIC_PAGE, and told in HTML when a key is needed.
PAGE_ENDPOINTS = {"page.index", "api.document"}


def _is_page() -> bool:
    return request.endpoint == "page.index" or (request.endpoint in PAGE_ENDPOINTS and wants_html())


def _key_given(keys: tuple[bytes, ...]) -> bool:
    """Whether the request carries a valid key. Every credential presented must be valid: a
    wrong Authorization header is refused even when X-API-Key holds a good key (a client
    sending both has a bug to see)."""
    given = []
    if "Authorization" in request.headers:
        auth = request.headers["Authorization"]
        given.append(auth[7:].strip() if auth[:7].lower() == "bearer " else "")
    if "X-API-Key" in request.headers:
        given.append(request.headers["X-API-Key"])
    return bool(given) and all(_valid_key(key, keys) for key in given)


def _require_api_key() -> Response | None:
    keys: tuple[bytes, ...] = current_app.extensions["api_keys"]
    if not keys or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if _is_page() and current_app.extensions["settings"].public_page:
        return None
    if not _key_given(keys):
        if _is_page():  # a person with a browser, who has no way to send a key
            response: Response = current_app.make_response(render_page("key_needed.html", 401))
        else:
            response = error_response(
                401, "unauthorized", "a valid API key is required (Authorization: Bearer <key> or X-API-Key: <key>)"
            )
        response.headers["WWW-Authenticate"] = 'Bearer realm="search-service"'
        return response
    return None


def _valid_key(given: str, keys: tuple[bytes, ...]) -> bool:
    """Whether ``given`` is one of ``keys``: compared with every key, in constant time."""
    given_bytes = given.encode("utf-8", "replace")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key)
    return bool(given) and matched


def _log_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    # By route pattern, not path: one series per endpoint, whatever the ids asked for.
    route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
    current_app.extensions["metrics"].observe(route, request.method, response.status_code, seconds)
    settings = current_app.extensions["settings"]
    path = request.full_path.rstrip("?") if settings.queries_logged else request.path
    access_log.info(
        json.dumps(
            {
                "request_id": g.get("request_id"),
                "client": request.remote_addr,
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "ms": round(seconds * 1000, 2),
            },
            ensure_ascii=False,
        )
    )
    return response


# No script may run on our pages; styles and images only from this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


# Every answer's, the app's and what the server writes itself (web/serve.py).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


class _RepeatedKey(Exception):
    def __init__(self, key: str, times: int) -> None:
        self.key, self.times = key, times


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refusing a key given twice (the decoder would keep the last silently)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        counts = Counter(k for k, _ in pairs)
        key = next(k for k, n in counts.items() if n > 1)
        raise _RepeatedKey(key, counts[key])
    return found


# Set by the server in the WSGI environment when a request's body could not be read
# (too slow, or malformed): (status, code, message), answered in the usual shape.
BODY_ERROR = "search_service.body_error"


def _refuse_unread_body() -> Response | None:
    error = request.environ.get(BODY_ERROR)
    return error_response(*error) if error else None


def _json_body() -> Any:
    """The request's JSON body (InvalidRequest when it is not JSON)."""
    try:
        data = request.get_data(cache=True)
        # A chunked body has no Content-Length: Werkzeug stops reading it at
        # the limit instead of refusing it, so a body that reached the limit
        # is taken as over it.
        if request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]:
            raise RequestEntityTooLarge()
        body = json.loads(data, object_pairs_hook=_unique_keys)
    except _RepeatedKey as exc:  # as a parameter given twice in the URL is
        raise InvalidRequest(
            f"key {exc.key!r} is given {exc.times} times in the JSON body; it takes one value", code="bad_parameter"
        ) from None
    except (ValueError, RecursionError):  # not JSON; or nested deeper than the decoder recurses
        body = None
    except HTTPException:  # 413 and the like: their own answer
        raise
    except Exception as exc:  # noqa: BLE001  (the body could not be read: a chunked body cut off by the client)
        raise InvalidRequest(
            f"the request body could not be read ({type(exc).__name__})", code="malformed_json"
        ) from None
    if body is None:
        raise InvalidRequest("the request body must be a JSON object", code="malformed_json")
    return body


def query_args() -> dict[str, list[str]]:
    """The URL's parameters, each name with all its values."""
    return request.args.to_dict(flat=False)


def _check_encoding() -> None:
    """A query string must be UTF-8: Werkzeug leaves what is not percent-encoded in the
    values it decodes, and a GBK-encoded query would be searched as "%D2%BD…"."""
    raw = request.query_string
    # Werkzeug leaves what is not UTF-8 percent-encoded in the parameters it decodes, so
    # only a parameter holding a "%" (or a query string of raw bytes) needs the exact,
    # slower check: most search requests skip it.
    if raw and (not raw.isascii() or any("%" in part for item in request.args.items(multi=True) for part in item)):
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                "the query string is not UTF-8: percent-encode the UTF-8 bytes of each character (%E5%8C%BB for 医)",
                code="bad_encoding",
            ) from None


# Endpoints that take no parameter at all: any is refused like an unknown one.
NO_PARAMETERS = {"api.passage", "api.health", "api.stats", "api.openapi", "api.favicon", "api.metrics"}


def _refuse_parameters() -> None:
    if request.endpoint in NO_PARAMETERS and request.args:
        name = next(iter(request.args))
        raise InvalidRequest(
            f"unknown parameter {name!r}; {request.path} takes no parameters", code="unknown_parameter"
        )


@api.route("/search", methods=["GET", "POST"])
def search() -> ResponseReturnValue:
    settings = current_app.extensions["settings"]
    if request.method == "POST":
        search_request = SearchRequest.from_json(settings, _json_body())
    else:
        search_request = SearchRequest.from_query(settings, query_args())
    result = service().search(search_request)
    return jsonify(result.as_dict())


@api.get("/documents/<path:doc_id>")
def document(doc_id: str) -> ResponseReturnValue:
    params = validate_query(document_params(current_app.extensions["settings"]), query_args())
    doc = service().document(doc_id, getattr(params, "from"), params.size)
    if wants_html():
        return render_page("document.html", doc=doc, **document_marks(doc, params.q, params.hit))
    return jsonify(dataclasses.asdict(doc))


@api.get("/passages/<path:passage_id>")
def passage(passage_id: str) -> ResponseReturnValue:
    return jsonify(dataclasses.asdict(service().passage(passage_id)))


@api.get("/analyze")
def analyze() -> ResponseReturnValue:
    params = validate_query(analyze_params(current_app.extensions["settings"]), query_args())
    return jsonify(service().analyze(params.text))


@api.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Browsers ask for it on every page; the page's own icon (SVG) answers."""
    icon = Path(current_app.static_folder or "") / "favicon.svg"
    response = Response(icon.read_bytes(), mimetype="image/svg+xml")
    response.cache_control.max_age = 86400
    return response


@api.get("/health")
def health() -> ResponseReturnValue:
    # With API keys, /health stays public (load balancers call it) but says why the index is
    # degraded or unavailable (paths, file names) only to a caller with a key; the log says it too.
    keys: tuple[bytes, ...] = current_app.extensions["api_keys"]
    detailed = not keys or _key_given(keys)
    try:
        status = service().health()
    except IndexUnavailable:
        if detailed:
            raise
        raise IndexUnavailable("no index version can be served; the server's log says why") from None
    if not detailed and "warning" in status:
        status["warning"] = "the index is served degraded; the server's log says why"
    return jsonify(status)


@api.get("/stats")
def stats() -> ResponseReturnValue:
    return jsonify(service().stats())


@api.get("/metrics")
def metrics() -> ResponseReturnValue:
    body, content_type = current_app.extensions["metrics"].exposition()
    return Response(body, content_type=content_type)


@api.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    from search_service.web.openapi import openapi_document  # pydantic: loaded on first use, not at start-up

    try:
        keys = service().current().planner.filter_keys
    except IndexUnavailable:
        keys = None
    return jsonify(openapi_document(current_app.extensions["settings"], keys))
