"""The settings table: every value a setting does not accept is refused when settings are made."""

import pytest

from search_service.errors import ConfigError
from search_service.settings import Settings
from tests.helpers import load_script

BAD = [
    ("SEARCH_ENGINE", "lucene", "is not one of whoosh, opensearch"),
    ("SEARCH_OPENCC_CONFIG", "s2t", "is not one of t2s, tw2s, hk2s, tw2sp"),
    ("SEARCH_SEGMENTER", "pkuseg", "is not one of jieba, rjieba"),
    ("SEARCH_RATE_LIMIT", "garbage", "is not a rate limit"),
    ("SEARCH_RATE_LIMIT", "10/fortnight", "is not a rate limit"),
    ("SEARCH_OPENSEARCH_URLS", "localhost:9200", "not an http(s)://host[:port] URL"),
    ("SEARCH_OPENSEARCH_URLS", " , ", "names no URL"),
    ("SEARCH_OPENSEARCH_VERIFY_CERTS", "maybe", "is not one of true, false"),
    ("SEARCH_LOG_QUERIES", "sometimes", "is not one of true, false"),
    ("SEARCH_OPENSEARCH_SHARDS", "0", "is less than 1"),
    ("SEARCH_OPENSEARCH_REPLICAS", "-1", "is less than 0"),
    ("SEARCH_OPENSEARCH_TIMEOUT", "0", "is less than 0.001"),
    ("SEARCH_OPENSEARCH_RETRY_SECONDS", "0", "is less than 0.1"),
    ("SEARCH_PASSAGE_MIN_CHARS", "0", "is less than 1"),
    ("SEARCH_PASSAGE_MAX_CHARS", "0", "is less than 1"),
    ("SEARCH_BOILERPLATE_MIN_DOCUMENTS", "0", "is less than 1"),
    ("SEARCH_WORKERS", "-2", "is less than 0"),
    ("SEARCH_WRITER_MEMORY_MB", "-1", "is less than 0"),
    ("SEARCH_KEEP_VERSIONS", "0", "is less than 1"),
    ("SEARCH_MAX_QUERY_CHARS", "0", "is less than 1"),
    ("SEARCH_MAX_PAGE_SIZE", "0", "is less than 1"),
    ("SEARCH_MAX_PAGE_DEPTH", "0", "is less than 1"),
    ("SEARCH_MAX_BODY_BYTES", "10", "is less than 1024"),
    ("SEARCH_HEAD_SECONDS", "0", "is less than 0.1"),
    ("SEARCH_BODY_SECONDS", "0", "is less than 0.1"),
    ("SEARCH_MAX_QUERY_TERMS", "0", "is less than 1"),
    ("SEARCH_MAX_QUERY_CLAUSES", "0", "is less than 1"),
    ("SEARCH_MAX_FILTER_VALUES", "0", "is less than 1"),
    ("SEARCH_SNIPPET_CHARS", "5", "is less than 20"),
    ("SEARCH_POSTING_CACHE_MB", "-1", "is less than 0"),
    ("SEARCH_RESULT_CACHE_MB", "-0.5", "is less than 0"),
    ("SEARCH_RELOAD_SECONDS", "-1", "is less than 0"),
    ("SEARCH_RATE_LIMIT_STORAGE", "sqlite:///x.db", "is not a storage URI flask-limiter knows"),
    ("SEARCH_TRUSTED_PROXIES", "-1", "is less than 0"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD)
def test_a_value_a_setting_does_not_accept_is_refused_with_its_name(name, value, reason):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"setting {name}=")
    assert reason in str(caught.value)


def test_every_setting_with_a_domain_has_a_bad_value_here():
    """The table above covers every setting that declares the values it accepts."""
    from dataclasses import fields

    checked = {"SEARCH_" + f.name.upper() for f in fields(Settings) if f.metadata["check"] is not None}
    assert checked == {name for name, _, _ in BAD}


def test_the_defaults_and_good_values_are_accepted():
    Settings()
    Settings.from_env(
        {
            "SEARCH_RATE_LIMIT": "10/second;1000/hour",
            "SEARCH_OPENSEARCH_URLS": "https://a.example:9200, http://127.0.0.1:9201/",
            "SEARCH_LOG_QUERIES": "FALSE",
            "SEARCH_PASSAGE_MIN_CHARS": "300",
            "SEARCH_WORKERS": "0",
        }
    )


def test_passage_max_chars_below_min_is_refused():
    with pytest.raises(ConfigError, match="SEARCH_PASSAGE_MAX_CHARS=40 is less than SEARCH_PASSAGE_MIN_CHARS=50"):
        Settings(passage_max_chars=40)


def test_serve_refuses_a_rate_limit_it_cannot_parse_before_starting(monkeypatch, capsys):
    """It used to start, then answer 500 with a traceback to every request, /health included."""
    monkeypatch.setenv("SEARCH_RATE_LIMIT", "garbage")
    assert load_script("serve").main(["--port", "1"]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "setting SEARCH_RATE_LIMIT='garbage' is not a rate limit" in err
