"""The docs stay true: every module is on the architecture page, every path the docs or a
docstring names exists, every link names a heading, and the settings table is the code's."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
# The changelog is history: the paths it names are those of their day. Its links are checked.
LINKED = [*DOCS, ROOT / "CHANGELOG.md"]
PACKAGE = ROOT / "search_service"

# A file of the project named in backquotes: a relative path ending in one of its file types.
PATH = re.compile(r"^[\w.\-]+(?:/[\w.\-]+)*\.(?:py|md|txt|toml|cfg|sh|conf|service|xml|html|css|svg|jsonl|tsv|pdf)$")
# A folder of the project named in backquotes: one of its top-level folders, and below.
FOLDER = re.compile(r"^(?:search_service|tests|scripts|docs|deploy|opensearch|corpus)(?:/[\w.\-]+)*/$")
QUOTED = re.compile(r"``?([^`\s]+)``?")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def named_paths(text: str) -> set[str]:
    return {m for m in QUOTED.findall(text) if PATH.match(m) or FOLDER.match(m)}


def exists(name: str, near: Path | None = None) -> bool:
    """A name resolves from the project root, from the package (docs say ``engine/bm25.py``),
    or from the folder of the module that names it."""
    bases = [ROOT, PACKAGE, *([near] if near else [])]
    if name.endswith(".py") and "/" not in name and near is None:
        # A bare module name (``serve.py``) in the docs: some module of that name.
        return any(PACKAGE.rglob(name))
    return any((base / name).exists() for base in bases)


def docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return [doc for doc in map(ast.get_docstring, nodes) if doc]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"^#{1,6} (.+)$", line)):
            found.add(slug(m.group(1).replace("`", "")))
    return found


def test_every_module_is_on_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    modules = [str(p.relative_to(ROOT)) for p in sorted(PACKAGE.rglob("*.py"))]
    missing = [m for m in modules if f"`{m}`" not in page]
    assert not missing, f"modules missing from docs/architecture.md: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_the_docs_name_exists(doc):
    missing = sorted(name for name in named_paths(doc.read_text("utf-8")) if not exists(name))
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_every_path_a_docstring_names_exists():
    missing = []
    for module in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]):
        for doc in docstrings(module):
            wrong = [name for name in named_paths(doc) if not exists(name, module.parent)]
            missing += [f"{module.relative_to(ROOT)}: {name}" for name in wrong]
    assert not missing, f"docstrings name paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", LINKED, ids=lambda p: p.name)
def test_every_link_names_a_file_and_a_heading(doc):
    broken = []
    for target in LINK.findall(doc.read_text("utf-8")):
        if re.match(r"^[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (doc.parent / file).resolve() if file else doc
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert not broken, f"{doc.name} links to no file or heading: {broken}"


def test_the_settings_page_holds_the_table_the_code_declares(capsys, monkeypatch):
    from search_service.cli import main

    assert main(["settings", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| variable | default | meaning |")
    assert table in (ROOT / "docs" / "settings.md").read_text("utf-8")


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) <= 150
    for command in ("bash scripts/run.sh serve", "bash scripts/run.sh test"):
        assert command in readme
    assert "exec bash scripts/run.sh test" in (ROOT / ".ci" / "run").read_text("utf-8")


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The path and link checks are not vacuous: a wrong path and a wrong anchor are found."""
    assert named_paths("see `search_service/nowhere.py` and ``engine/bm25.py``") == {
        "search_service/nowhere.py",
        "engine/bm25.py",
    }
    assert not exists("search_service/nowhere.py") and exists("engine/bm25.py")
    page = tmp_path / "page.md"
    page.write_text("# A title, with `code`\n\n## Où — 中文 heading\n", "utf-8")
    assert anchors(page) == {"a-title-with-code", "où--中文-heading"}
