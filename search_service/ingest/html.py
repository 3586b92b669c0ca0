"""HTML documents: the page's main text, without navigation, sidebars and footers.

Main-content extraction is trafilatura's (chosen over readability-lxml and
jusText: it keeps headings, which become passage headings, and it handled the
test pages' nav, sidebar and footer). Where it finds nothing (a page of a few
lines, or a tree nested deeper than lxml builds), every visible text is kept,
read by the standard library's tokenizer in one pass: time linear in the
page's size however deep its nesting.
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser

_HIDDEN = {"script", "style", "noscript", "template", "head", "svg", "iframe", "title"}
_BLOCK = {
    "p",
    "div",
    "li",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "dt",
    "dd",
    "nav",
    "aside",
    "main",
}


# A page with less visible text than this is kept whole: it has little chrome to
# lose, and extraction misreads such pages (it split 第一段<b>加粗</b>文字 into lines).
MIN_EXTRACTED_CHARS = 200


def html_document(html: str) -> tuple[str, str]:
    """(title, main text with one block a line; headings as ``#`` lines) of an HTML page."""
    parsed = _parse(html)
    visible = "".join(parsed.parts)
    title = " ".join("".join(parsed.title).split())
    text = ""
    if len("".join(visible.split())) >= MIN_EXTRACTED_CHARS:
        import trafilatura  # only reindex reads HTML

        # trafilatura logs every page it finds too short or too deep; the fallback handles those.
        logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
        text = (
            trafilatura.extract(
                html,
                output_format="markdown",
                include_comments=False,
                include_tables=True,
                include_images=False,
                include_links=False,
                favor_recall=True,
            )
            or ""
        )
        metadata = trafilatura.extract_metadata(html) if text.strip() else None
        if metadata is not None and metadata.title:
            title = metadata.title  # the <title> without the site's name, or the <h1>
    if not text.strip():
        text = visible
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return title.strip(), "\n".join(line for line in lines if line)


class _Text(HTMLParser):
    """Visible text and the <title>, block elements on lines of their own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.parts.append(data)


def _parse(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser
