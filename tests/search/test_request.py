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
        SearchRequest.create(SETTINGS, q="医保卡", doc=[f"d{i}" for i in range(40)],
                             filters={"tags": [f"t{i}" for i in range(25)]})
    assert exc.value.code == "too_many_filters"
    assert SearchRequest.create(SETTINGS, q="医保卡", doc=[f"d{i}" for i in range(64)])
