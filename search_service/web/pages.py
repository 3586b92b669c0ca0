"""The search page for people: the same core as the JSON API, rendered with Jinja.

Every piece of corpus text and every query is escaped by Jinja's autoescape;
the exceptions, highlights, are built by :mod:`search_service.search.highlight`
from escaped text and ``<mark>`` tags only. The page runs no script at all, and
the Content-Security-Policy (see :mod:`.app`) forbids any.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue

from search_service.errors import SearchError
from search_service.search.request import SearchRequest, page_params, validate_query
from search_service.search.results import DocumentRecord
from search_service.search.service import SearchService
from search_service.web.errors import status_for
from search_service.web.html import render_page

page = Blueprint("page", __name__)
PAGE_SIZE = 10
PAGE_LINKS = 9  # numbered page links around the current one


@page.get("/")
def index() -> ResponseReturnValue:
    q = request.args.get("q", "")
    grouped = request.args.get("collapse") == "doc"
    settings = current_app.extensions["settings"]
    service: SearchService = current_app.extensions["search"]
    try:
        params = validate_query(page_params(settings), request.args.to_dict(flat=False))
        if not params.q.strip():
            return render_page("search.html", q=q, grouped=grouped, result=None)
        result = service.search(
            SearchRequest.create(settings, q=params.q, page=params.page, size=PAGE_SIZE, collapse=params.collapse)
        )
    except SearchError as exc:
        return render_page("search.html", status_for(exc), q=q, grouped=grouped, result=None, error=_message(exc))
    return render_page(
        "search.html", q=q, grouped=grouped, result=result, numbers=page_numbers(result.page, result.pages)
    )


def page_numbers(current: int, pages: int) -> list[int]:
    """The page numbers to link: a window of PAGE_LINKS around ``current``, within 1..pages."""
    if pages <= 0:
        return []
    first = max(1, min(current - PAGE_LINKS // 2, pages - PAGE_LINKS + 1))
    return list(range(first, min(pages, first + PAGE_LINKS - 1) + 1))


def document_marks(doc: DocumentRecord, q: str, hit: int | None) -> dict[str, Any]:
    """What the document page shows beyond the document: the query (for the way back),
    each passage with the query's words marked, and which passage was the hit."""
    service: SearchService = current_app.extensions["search"]
    if not q.strip():
        return {"q": q, "hit": hit, "title_html": None, "passages_html": None, "headings_html": {}}
    headings = sorted({p.heading for p in doc.passages if p.heading})
    passages = [p.text for p in doc.passages]
    marked = service.mark(q, [doc.title, *headings, *passages])
    return {
        "q": q,
        "hit": hit,
        "title_html": marked[0],
        "headings_html": dict(zip(headings, marked[1:])),
        "passages_html": marked[1 + len(headings) :],
    }


def _message(exc: SearchError) -> str:
    messages = {
        "query_too_long": "查询太长了，请缩短到 {n} 个字以内。",
        "missing_query": "请输入要搜索的内容。",
        "bad_parameter": "页码无效。",
        "unknown_parameter": "网址中有无法识别的参数：{m}",
        "index_unavailable": "索引暂不可用，请稍后再试。",
    }
    text = messages.get(exc.code, "请求无效：{m}")
    return text.format(n=current_app.extensions["settings"].max_query_chars, m=exc.message)
