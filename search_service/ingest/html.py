"""HTML documents: the page's main text, without navigation, sidebars and footers.

Main-content extraction is trafilatura's (chosen over readability-lxml and
jusText: it keeps headings, which become passage headings, and it handled the
test pages' nav, sidebar and footer). Where it finds nothing (a page of a few
lines, or a tree nested deeper than lxml builds), the visible text is read by
the standard library's tokenizer in one pass (time linear in the page's size
however deep its nesting), page furniture left out whatever the page's length:
``<nav>``, ``<header>``, ``<footer>``, ``<aside>``, menus, and elements whose
role or class says they are navigation, a banner, a footer or a sidebar. A
page that is nothing but furniture is read whole.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from xml.etree import ElementTree

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


# Page furniture: never main text. By element, by ARIA role, or by a class or id word.
_CHROME_TAGS = {"nav", "header", "footer", "aside", "menu"}
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "complementary", "menu", "menubar", "search"}
_CHROME_NAME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|sidebar|footer|header|breadcrumbs?|topbar|toolbar|copyright)(?:$|[\s_-])",
    re.IGNORECASE,
)

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
        # XML, not text or Markdown: those escape Markdown characters (a \< b) and
        # unescape entities a second time (&amp;lt; read as <); XML keeps the text as shown.
        extracted = trafilatura.extract(
            html,
            output_format="xml",
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            favor_recall=True,
        )
        text = _xml_text(extracted) if extracted else ""
        metadata = trafilatura.extract_metadata(html) if text.strip() else None
        if metadata is not None and metadata.title:
            title = metadata.title  # the <title> without the site's name, or the <h1>
    if not text.strip():
        main = "".join(parsed.main)
        text = main if main.strip() else visible
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return title.strip(), "\n".join(line for line in lines if line)


def _xml_text(xml: str) -> str:
    """trafilatura's XML as lines: a heading as a ``#`` line, a paragraph, quote, code
    block or list item (``•``) a line (a nested list's items after their item), a table
    row its cells on one line; line breaks inside a block kept."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return ""
    main = root.find("main")
    lines: list[str] = []

    def walk(element: ElementTree.Element) -> None:
        for child in element:
            if child.tag == "head":
                lines.append("# " + _inline(child))
            elif child.tag in ("p", "quote", "code", "item"):
                # A list item keeps the bullet a browser shows (a related list's items are told apart by it).
                lines.append(("• " if child.tag == "item" else "") + _inline(child, skip="list"))
                for nested in child.findall("list"):
                    walk(nested)
            elif child.tag == "row":
                lines.append(" ".join(_inline(cell) for cell in child))
            else:  # list, table, div and the like: their blocks
                walk(child)

    walk(main if main is not None else root)
    return "\n".join(lines)


def _inline(element: ElementTree.Element, skip: str = "") -> str:
    """An element's text with its inline children's (a ``lb`` a line break); ``skip``: a
    child tag whose own text is left out (its tail is not)."""
    out = [element.text or ""]
    for child in element:
        if child.tag == "lb":
            out.append("\n")
        elif child.tag != skip:
            out.append(_inline(child))
        out.append(child.tail or "")
    return "".join(out)


@dataclass
class _Open:
    """A furniture element open around the text: closed by its own tag name, once the
    elements of that name opened inside it are closed (``depth``)."""

    tag: str
    depth: int = 1


class _Text(HTMLParser):
    """Visible text (``parts``), the same without page furniture (``main``) and the
    <title>; block elements on lines of their own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.main: list[str] = []
        self.title: list[str] = []
        self._hidden = 0
        self._in_title = False
        # The furniture elements open around the text, innermost last.
        self._chrome: list[_Open] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if _is_chrome(tag, attrs):
            self._chrome.append(_Open(tag))
        else:
            same = self._innermost(tag)
            if same is not None:
                same.depth += 1
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCK:
            self._add("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self._add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK:
            self._add("\n")
        same = self._innermost(tag)
        if same is not None:
            same.depth -= 1
            if same.depth == 0:
                del self._chrome[self._chrome.index(same) :]  # and any left open inside it

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self._add(data)

    def _innermost(self, tag: str) -> _Open | None:
        """The innermost open furniture element named ``tag``: what a ``tag`` opened or closed
        inside the furniture counts against."""
        for open_ in reversed(self._chrome):
            if open_.tag == tag:
                return open_
        return None

    def _add(self, text: str) -> None:
        self.parts.append(text)
        if not self._chrome:
            self.main.append(text)


def _is_chrome(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _CHROME_TAGS:
        return True
    for name, value in attrs:
        if value and (
            (name == "role" and value.strip().lower() in _CHROME_ROLES)
            or (name in ("class", "id") and _CHROME_NAME.search(value))
        ):
            return True
    return False


def _parse(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser
