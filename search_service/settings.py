"""Settings, declared once: name, type, default, help and the values it accepts.

Every setting can be read from an environment variable ``SEARCH_<NAME>``
(upper case). The CLI, the app factory and ``docs/settings.md`` all read this one table.
A value a setting does not accept is a :class:`ConfigError` when the settings are made,
before any server or reindex starts (the CLI's exit 78), never an error at first use.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from search_service.errors import ConfigError

ENV_PREFIX = "SEARCH_"

# The values of the settings that name an implementation (their one declaration).
ENGINES = ("whoosh", "opensearch")
SEGMENTERS = ("jieba", "rjieba")
OPENCC_CONFIGS = ("t2s", "tw2s", "hk2s", "tw2sp")
SWITCH = ("true", "false", "1", "0", "yes", "no", "on", "off")  # a string setting that is on or off

Check = Callable[[Any], "str | None"]  # what is wrong with a value, or None


def one_of(*choices: str, fold: bool = False) -> Check:
    def check(value: Any) -> str | None:
        return None if (value.lower() if fold else value) in choices else f"is not one of {', '.join(choices)}"

    return check


def at_least(low: float) -> Check:
    def check(value: Any) -> str | None:
        return None if value >= low else f"is less than {low:g}"

    return check


def _rate_limit(value: Any) -> str | None:
    if not value:
        return None
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        return "is not a rate limit such as '120/minute' or '10/second;1000/hour'"
    return None


def _storage(value: Any) -> str | None:
    from limits.storage import SCHEMES  # type: ignore[attr-defined]  # public in its docs, not in __all__

    scheme = value.split("://", 1)[0] if "://" in value else ""
    return None if scheme in SCHEMES else f"is not a storage URI flask-limiter knows ({', '.join(sorted(SCHEMES))})"


def _urls(value: Any) -> str | None:
    urls = [u.strip() for u in value.split(",") if u.strip()]
    bad = [u for u in urls if not re.fullmatch(r"https?://[^/\s:]+(:\d{1,5})?/?", u)]
    if not urls:
        return "names no URL"
    return f"holds {bad[0]!r}, not an http(s)://host[:port] URL" if bad else None


def _setting(default: Any, help: str, secret: bool = False, check: Check | None = None) -> Any:
    # A secret stays out of repr(), so that logging a Settings never shows it.
    return field(default=default, repr=not secret, metadata={"help": help, "secret": secret, "check": check})


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Build with :meth:`from_env`."""

    engine: str = _setting(
        "whoosh",
        "Search engine: whoosh (embedded, on local disk) or opensearch (a cluster; the SEARCH_OPENSEARCH_* settings).",
        check=one_of(*ENGINES),
    )
    index_dir: str = _setting(
        "index",
        "Index root: holds the versions and the CURRENT pointer (whoosh); with opensearch, where reindex "
        "writes its last report.",
    )
    opensearch_urls: str = _setting(
        "http://127.0.0.1:9200",
        "OpenSearch node URLs, comma-separated; requests to a node that fails go to another.",
        check=_urls,
    )
    opensearch_user: str = _setting("", "OpenSearch basic-auth user; empty means no authentication.")
    opensearch_password: str = _setting("", "OpenSearch basic-auth password (never logged or printed).", secret=True)
    opensearch_verify_certs: str = _setting(
        "true", "Verify the cluster's TLS certificates (https URLs): true or false.", check=one_of(*SWITCH, fold=True)
    )
    opensearch_ca_certs: str = _setting("", "CA bundle for the cluster's certificates; empty means the system's.")
    opensearch_prefix: str = _setting(
        "search-service",
        "Name of the alias that is the current version; each version is an index <prefix>-v-<version>.",
    )
    opensearch_shards: int = _setting(1, "Primary shards of each new version's index.", check=at_least(1))
    opensearch_replicas: int = _setting(
        1,
        "Replicas of each shard of a new version's index: with 1, a cluster of two or more nodes loses one "
        "without failing a request (a one-node cluster stays yellow, and works).",
        check=at_least(0),
    )
    opensearch_timeout: float = _setting(
        10.0,
        "Seconds a call to the cluster may take in all, its attempts on every node together (then 503); "
        "an attempt gets half of it at most, so that after a hung node another can answer. "
        "Keep it under half of serve's --timeout: a search makes at most two calls in a row.",
        check=at_least(0.001),
    )
    opensearch_retry_seconds: float = _setting(
        10.0,
        "Longest wait between two checks of a cluster that failed on every node; meanwhile requests are "
        "answered 503 at once (the wait doubles from 0.5 s).",
        check=at_least(0.1),
    )
    corpus_dir: str = _setting("corpus", "Folder of documents that reindex reads.")
    opencc_config: str = _setting(
        "t2s", "OpenCC conversion applied before analysis: t2s, tw2s, hk2s or tw2sp.", check=one_of(*OPENCC_CONFIGS)
    )
    segmenter: str = _setting(
        "jieba",
        "Word segmenter for reindex: jieba, or rjieba (jieba-rs, ~20x faster, pip install rjieba). "
        "Stored in the index; queries use the index's.",
        check=one_of(*SEGMENTERS),
    )
    userdict: str = _setting(
        "", "jieba user dictionary (jieba's format); empty means <corpus>/userdict.txt; ignored when missing."
    )
    stopwords: str = _setting("", "Stopword file, one word a line; empty means the bundled list.")
    synonyms: str = _setting(
        "",
        "Synonym groups (one comma-separated group a line) stored with the index and applied to queries; "
        "empty means <corpus>/synonyms.txt; ignored when missing.",
    )
    cache_dir: str = _setting("", "Where jieba keeps its dictionary cache; empty means ~/.cache/search-service.")
    passage_min_chars: int = _setting(50, "Short neighbouring lines are merged up to this length.", check=at_least(1))
    passage_max_chars: int = _setting(
        300, "Longer paragraphs are split at sentence ends (at least passage_min_chars).", check=at_least(1)
    )
    boilerplate_min_documents: int = _setting(
        3,
        "A short line found in this many documents or more is page chrome (navigation, ads), not text; "
        "a line ending a sentence never is.",
        check=at_least(1),
    )
    workers: int = _setting(0, "Processes used by reindex; 0 means one per CPU core.", check=at_least(0))
    writer_memory_mb: int = _setting(
        256,
        "Postings a reindex process holds in memory, in MB, before it writes them out as a segment (whoosh): "
        "bounds reindex memory whatever the corpus size.",
        check=at_least(0),
    )
    keep_versions: int = _setting(2, "Index versions kept on disk (the current one included).", check=at_least(1))
    max_query_chars: int = _setting(256, "Longest accepted query, in characters.", check=at_least(1))
    max_page_size: int = _setting(100, "Largest accepted `size`.", check=at_least(1))
    max_page_depth: int = _setting(
        1000,
        "Hits that can be paged to: a page beyond them is empty (the result's pages says how many there are).",
        check=at_least(1),
    )
    max_body_bytes: int = _setting(65536, "Largest accepted request body, in bytes.", check=at_least(1024))
    head_seconds: float = _setting(
        10.0,
        "Longest a client may take to send a request's line and headers (serve); beyond it, 408, or the "
        "connection closed when nothing came. A head is read by the worker's event loop, never by a thread.",
        check=at_least(0.1),
    )
    body_seconds: float = _setting(
        10.0,
        "Longest a client may take to send a request body (serve); beyond it, 408. A request's own time limit "
        "starts once its body is in.",
        check=at_least(0.1),
    )
    max_query_terms: int = _setting(
        32,
        "Most distinct words of a query that score: a longer query (a pasted paragraph) keeps the ones rarest "
        "in the language, with their grams and pairs (a cost bound per request; its constraints keep every word).",
        check=at_least(1),
    )
    max_query_clauses: int = _setting(
        16,
        "Most phrases, +required and -excluded clauses a query may have (a cost bound per request).",
        check=at_least(1),
    )
    max_filter_values: int = _setting(64, "Most doc ids, and most filter values, a search may name.", check=at_least(1))
    snippet_chars: int = _setting(160, "Highlights of longer passages are cut to this window.", check=at_least(20))
    posting_cache_mb: int = _setting(
        128,
        "Decoded posting lists kept in memory per server process, in MB (what is cheapest to read again per "
        "byte dropped first).",
        check=at_least(0),
    )
    result_cache_mb: float = _setting(
        16.0,
        "Search results kept per server process for repeated requests, in MB (per index version, least "
        "recently used dropped first); 0 turns the cache off.",
        check=at_least(0),
    )
    reload_seconds: float = _setting(
        1.0,
        "How often a server checks the CURRENT pointer for a new index version (0: at every request).",
        check=at_least(0),
    )
    api_keys: str = _setting(
        "",
        "API keys: a comma-separated list, or @path of a file with one key a line; empty means no keys needed.",
        secret=True,
    )
    rate_limit_storage: str = _setting(
        "memory://",
        "Where rate-limit counts are kept: memory:// counts in each worker process (a client gets the allowance "
        "once per worker); a store the workers share, such as redis://host:6379 or memcached://host:11211 "
        "(flask-limiter's storage URIs; its client library installed), makes the limit hold across workers.",
        check=_storage,
    )
    rate_limit: str = _setting(
        "",
        "Per-client rate limit such as '120/minute' (flask-limiter syntax), one allowance for every route, counted "
        "where SEARCH_RATE_LIMIT_STORAGE says (per worker process by default); empty means off.",
        check=_rate_limit,
    )
    trusted_proxies: int = _setting(
        0,
        "Reverse proxies in front of the server (nginx: 1): the client's address is then taken from their "
        "X-Forwarded-For (rate limits and logs), and the scheme and host from X-Forwarded-Proto and -Host.",
        check=at_least(0),
    )
    public_page: bool = _setting(
        False, "With API keys set: the search and document pages (for people) need no key; the JSON API still does."
    )
    log_queries: str = _setting(
        "true",
        "Log the query string of each request; set to false for privacy (paths and statuses are still logged).",
        check=one_of(*SWITCH, fold=True),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            check = f.metadata["check"]
            value = getattr(self, f.name)
            reason = check(value) if check is not None else None
            if reason is not None:
                shown = "(hidden)" if f.metadata["secret"] else repr(value)
                raise ConfigError(f"setting {ENV_PREFIX}{f.name.upper()}={shown} {reason}")
        if self.passage_max_chars < self.passage_min_chars:
            raise ConfigError(
                f"setting {ENV_PREFIX}PASSAGE_MAX_CHARS={self.passage_max_chars} is less than "
                f"{ENV_PREFIX}PASSAGE_MIN_CHARS={self.passage_min_chars}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``SEARCH_*`` variables, then explicit overrides (None is ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.name, f.type, raw)
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in {f.name for f in fields(cls)}:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def api_key_list(self) -> tuple[str, ...]:
        """The configured API keys (read from the file when ``api_keys`` is @path); () when unset.

        Raises ConfigError when keys were asked for but none can be used (a value
        of only commas or blanks, a file missing, unreadable or holding only
        comments): a server must never run open by mistake.
        """
        raw = self.api_keys
        if raw == "":
            return ()
        if raw.strip().startswith("@"):
            path = Path(raw.strip()[1:])
            try:
                lines = path.read_text("utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
                raise ConfigError(f"setting SEARCH_API_KEYS: cannot read {str(path)!r}: {reason}") from None
            keys = tuple(k for k in (line.strip() for line in lines) if k and not k.startswith("#"))
            if not keys:
                raise ConfigError(f"setting SEARCH_API_KEYS: {str(path)!r} holds no key (only blank lines or comments)")
            return keys
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        if not keys:
            raise ConfigError("setting SEARCH_API_KEYS is set but holds no key")
        return keys

    @property
    def queries_logged(self) -> bool:
        return self.log_queries.lower() not in ("false", "0", "no", "off")

    @property
    def userdict_path(self) -> Path:
        return Path(self.userdict) if self.userdict else Path(self.corpus_dir) / "userdict.txt"

    @property
    def synonyms_path(self) -> Path:
        return Path(self.synonyms) if self.synonyms else Path(self.corpus_dir) / "synonyms.txt"

    @property
    def jieba_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        return Path(os.path.expanduser("~")) / ".cache" / "search-service"

    def describe(self) -> list[tuple[str, str, Any, Any, str]]:
        """(environment variable, type, default, value, help) for every setting; secrets' values hidden."""
        return [
            (
                ENV_PREFIX + f.name.upper(),
                str(f.type),
                f.default,
                ("(set)" if getattr(self, f.name) else "") if f.metadata["secret"] else getattr(self, f.name),
                f.metadata["help"],
            )
            for f in fields(self)
        ]


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _coerce(name: str, type_name: Any, raw: str) -> Any:
    if type_name in (bool, "bool"):
        if raw.strip().lower() not in _BOOLEANS:
            raise ConfigError(f"setting {ENV_PREFIX}{name.upper()}={raw!r} is not true or false")
        return _BOOLEANS[raw.strip().lower()]
    try:
        if type_name in (int, "int"):
            return int(raw)
        if type_name in (float, "float"):
            return float(raw)
    except ValueError:
        kind = "an integer" if type_name in (int, "int") else "a number"
        raise ConfigError(f"setting {ENV_PREFIX}{name.upper()}={raw!r} is not {kind}") from None
    return raw
