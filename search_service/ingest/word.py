"""Word (.docx) documents through python-docx: paragraphs and tables in order,
headings (by paragraph style) written as ``#`` lines so that they head passages."""

from __future__ import annotations

import io

from search_service.errors import DocumentError

_HEADING_STYLES = {f"heading {n}": n for n in range(1, 7)}


def docx_text(data: bytes, source: str) -> tuple[str, str]:
    """(title, text) of a .docx file. Raises DocumentError for a file that is not one."""
    import docx  # python-docx; only reindex reads Word files
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise DocumentError(source, f"cannot read the Word file ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001  (a corrupt zip or XML: the file is reported, never the run stopped)
        raise DocumentError(source, f"cannot read the Word file ({type(exc).__name__}: {exc})") from None
    title = (document.core_properties.title or "").strip()
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, docx.table.Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                if any(cells):
                    lines.append("\t".join(cells))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "").lower()
        if style == "title" and not title:
            title = text
            lines.append(text)
        elif style in _HEADING_STYLES:
            lines.append("#" * _HEADING_STYLES[style] + " " + text)
        else:
            lines.append(text)
    return title, "\n".join(lines)
