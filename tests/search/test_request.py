"""Request validation: the cost of one request is bounded before any work is done."""

from __future__ import annotations

import pytest

from search_service.errors import InvalidRequest
from search_service.search.request import SearchRequest
from search_service.settings import Settings

SETTINGS = Settings.from_env()


def test_too_many_constraining_clauses_are_refused_with_the_limit():
    q = "的 " + " ".join(f"-{c}" for c in "一是在不了有和人这中大为上个国我以")
    with pytest.raises(InvalidRequest, match="at most 16") as exc:
        SearchRequest.create(SETTINGS, q=q)
    assert exc.value.code == "too_many_clauses"
    assert SearchRequest.create(SETTINGS, q="的 " + " ".join(f"-{c}" for c in "一是在不了有和人这中大为上个国我"))
    # plain words are not clauses that constrain: a long question is fine
    assert SearchRequest.create(SETTINGS, q=" ".join("医保卡密码") * 10)


def test_too_many_doc_ids_and_filter_values_are_refused_with_the_limit():
    with pytest.raises(InvalidRequest, match="at most 64") as exc:
        SearchRequest.create(SETTINGS, q="医保卡", doc=[f"d{i}" for i in range(65)])
    assert exc.value.code == "bad_parameter"
    with pytest.raises(InvalidRequest, match="at most 64") as exc:
        SearchRequest.create(SETTINGS, q="医保卡", filter=[f"tags:t{i}" for i in range(65)])
    assert exc.value.code == "bad_filter"
    assert SearchRequest.create(
        SETTINGS, q="医保卡", doc=[f"d{i}" for i in range(64)], filter=[f"tags:t{i}" for i in range(64)]
    )


def test_unknown_parameters_are_refused_naming_the_known_ones():
    for make in (
        lambda: SearchRequest.create(SETTINGS, q="x", sise=10),
        lambda: SearchRequest.from_json(SETTINGS, {"q": "x", "filters": {"k": "v"}}),
        lambda: SearchRequest.from_query(SETTINGS, {"q": ["x"], "Size": ["3"]}),
    ):
        with pytest.raises(InvalidRequest, match="the parameters are: q, size, page, doc, collapse, filter") as exc:
            make()
        assert exc.value.code == "unknown_parameter"


def test_url_parameters_are_typed_like_json_ones():
    assert SearchRequest.from_query(
        SETTINGS, {"q": ["x"], "size": ["3"], "filter": ["a:1", "b:2"], "doc": ["d"]}
    ) == SearchRequest("x", 3, 1, ("d",), (("a", "1"), ("b", "2")), None)
    for args in (
        {"q": ["x"], "size": ["1.0"]},
        {"q": ["x"], "size": ["true"]},
        {"q": ["x"], "size": ["１０"]},
        {"q": ["x", "y"]},
        {"q": ["x"], "page": ["1", "2"]},
    ):
        with pytest.raises(InvalidRequest) as exc:
            SearchRequest.from_query(SETTINGS, args)
        assert exc.value.code == "bad_parameter", args
    # JSON is strict: a string is not a number, true and 1.5 are not integers (2.0 is, as JSON Schema says)
    for body in ({"q": "x", "size": True}, {"q": "x", "size": 1.5}, {"q": "x", "size": "3"}, {"q": "x", "doc": "d"}):
        with pytest.raises(InvalidRequest):
            SearchRequest.from_json(SETTINGS, body)
    assert SearchRequest.from_json(SETTINGS, {"q": "x", "size": 2.0}).size == 2


def test_a_blank_query_is_missing_whatever_the_whitespace():
    for q in ("", " ", "\u3000", "\ufeff", "\u2028\t", "\x85"):
        with pytest.raises(InvalidRequest) as exc:
            SearchRequest.create(SETTINGS, q=q)
        assert exc.value.code == "missing_query"
