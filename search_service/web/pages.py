"""The search page for people: the same core as the JSON API, rendered with Jinja.

Every piece of corpus text and every query is escaped by Jinja's autoescape;
the one exception, a hit's ``highlight``, is built by :mod:`search_service.search.highlight` from
escaped text and ``<mark>`` tags only. The page runs no script at all, and the
Content-Security-Policy (see :mod:`.app`) forbids any.
"""

from __future__ import annotations

import math

from flask import Blueprint, current_app, request

from search_service.errors import SearchError
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from search_service.web.errors import status_for
from search_service.web.html import render_page

page = Blueprint("page", __name__)


@page.get("/")
def index():
    q = request.args.get("q", "")
    if not q.strip():
        return render_page("search.html", q=q, result=None, pages=0)
    settings = current_app.extensions["settings"]
    service: SearchService = current_app.extensions["search"]
    try:
        result = service.search(SearchRequest.create(settings, q=q, page=request.args.get("page"), size=10))
    except SearchError as exc:
        return render_page("search.html", status_for(exc), q=q, result=None, pages=0, error=_message(exc))
    pages = min(math.ceil(result.total / result.size), settings.max_page_depth // result.size)
    return render_page("search.html", q=q, result=result, pages=pages)


def _message(exc: SearchError) -> str:
    messages = {
        "query_too_long": "查询太长了，请缩短到 {n} 个字以内。",
        "missing_query": "请输入要搜索的内容。",
        "page_too_deep": "页码太大了。",
        "bad_parameter": "页码无效。",
        "index_unavailable": "索引暂不可用，请稍后再试。",
    }
    text = messages.get(exc.code, "请求无效：{m}")
    return text.format(n=current_app.extensions["settings"].max_query_chars, m=exc.message)
