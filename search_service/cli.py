"""The ``search-service`` command: reindex, serve, search, settings, evaluate, longdocs, bench.

A thin shell: each subcommand parses its options, makes one core call and
prints the result. Errors leave as one line on stderr and an exit code, mapped
from the core's errors here and nowhere else (:data:`EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, ClassVar, NoReturn

from search_service import __version__
from search_service.errors import ConfigError, IndexLocked, InvalidRequest, SearchError
from search_service.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1  # for reindex: nothing switched, the previous index stays current
EXIT_SKIPPED = 2  # reindex: indexed and switched, but some files were skipped
EXIT_LOCKED = 3  # reindex: another reindex is running on this index
EXIT_USAGE = 64  # a bad option or argument (sysexits EX_USAGE)
EXIT_CONFIG = 78  # a setting's value cannot be used (sysexits EX_CONFIG)
EXIT_CODES_HELP = (
    f"exit codes: {EXIT_OK} ok; {EXIT_FAILED} failed (for reindex: nothing switched, the previous "
    f"index stays current); {EXIT_SKIPPED} indexed with files skipped; {EXIT_LOCKED} another reindex "
    f"is running; {EXIT_USAGE} usage error; {EXIT_CONFIG} bad setting."
)
# The exit code of each core error; any other SearchError is a failure.
EXIT_CODES: dict[type[SearchError], int] = {
    InvalidRequest: EXIT_USAGE,
    ConfigError: EXIT_CONFIG,
    IndexLocked: EXIT_LOCKED,
}


def exit_code(exc: SearchError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_FAILED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 64, not argparse's 2 (2 means "files skipped")
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="search-service", description="Chinese full-text search service.", epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"search-service {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "reindex",
        help="build a new index version from the corpus",
        description="Read the corpus, split it into passages, analyze them (OpenCC + jieba) into a new "
        "Whoosh index version and switch to it atomically.",
        epilog=EXIT_CODES_HELP,
    )
    add_reindex_options(p)

    p = sub.add_parser("serve", help="serve the HTTP API with gunicorn")
    p.add_argument("--index", help="index root (default: $SEARCH_INDEX_DIR or index/)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=int, default=30, help="seconds before a stuck worker is restarted (default 30)")

    p = sub.add_parser("search", help="run one query against the index and print JSON")
    p.add_argument("q", help="the query")
    p.add_argument("--index", help="index root")
    p.add_argument("--size", type=int, default=5, help="results (default 5)")
    p.add_argument("--collapse", choices=["doc", "none"], help="'doc': best passage per document")
    p_settings = sub.add_parser(
        "settings", help="print every setting: environment variable, default, current value, meaning"
    )
    p_settings.add_argument("--markdown", action="store_true", help="the table of docs/settings.md")
    _add_devtools(sub)
    return parser


def _add_devtools(sub: Any) -> None:
    """The developers' commands: evaluate, longdocs and bench."""
    p = sub.add_parser(
        "evaluate",
        help="index a judged collection and measure ranking quality",
        description="Index CORPUS (a jsonl file or folder), run every query with collapse=doc through "
        "the API's code path, and print MRR@10, R@1, R@10, R@100 and queries per second.",
    )
    p.add_argument("--corpus", required=True, help="jsonl collection (id, title, text) or corpus folder")
    p.add_argument("--queries", required=True, help="jsonl queries (id, text)")
    p.add_argument("--qrels", required=True, help="judgments: query_id<TAB>doc_id<TAB>relevance")
    p.add_argument("--index", help="index root to build into (default: a temporary folder)")
    p.add_argument("--run", help="write the ranking here in TREC run format")
    p.add_argument("--spans", help="judge passages too: query_id<TAB>doc_id<TAB>start<TAB>end of the relevant text")
    p.add_argument(
        "--candidates",
        type=int,
        default=0,
        help="search each query within N documents: its relevant ones and those plain BM25 ranks highest",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = sub.add_parser(
        "longdocs",
        help="write a long-document form of a judged collection (for evaluate)",
        description="Join each article's paragraphs of CORPUS (jsonl) into one text file, wrapped as PDF "
        "text is, with a shared legal notice and a page header and footer every 30 lines; write the "
        "judgments per document (OUT/qrels.tsv) and per passage (OUT/passages.tsv).",
    )
    p.add_argument("--corpus", required=True, help="jsonl collection (id, title, text): paragraphs")
    p.add_argument("--qrels", required=True, help="the collection's judgments (query_id, paragraph id)")
    p.add_argument("--out", required=True, help="folder to write corpus/, qrels.tsv and passages.tsv into")
    p = sub.add_parser(
        "bench",
        help="benchmark indexing, queries and HTTP against peers (bounded, loopback)",
        description="Build corpora of N passages from ../shared/eval texts, index them with this "
        "service and with the peers (naive Whoosh + jieba, tantivy), time queries in "
        "process and over HTTP. Writes a JSON report and prints a table.",
    )
    p.add_argument("--sizes", default="10000,50000,100000", help="passage counts (default 10000,50000,100000)")
    p.add_argument("--queries", type=int, default=1000, help="queries per size (default 1000)")
    p.add_argument("--http-seconds", type=float, default=10, help="seconds per HTTP load step; 0 skips HTTP")
    p.add_argument("--clients", default="1,8,32", help="concurrent HTTP clients per step (default 1,8,32)")
    p.add_argument("--no-peers", action="store_true", help="skip the naive Whoosh and tantivy peers")
    p.add_argument("--peer-sizes", default=None, help="sizes at which the peers run too (default: all)")
    p.add_argument(
        "--repeat", type=int, default=1, help="builds per engine and size; the median is reported (default 1)"
    )
    p.add_argument("--eval-dir", default=None, help="evaluation data folder (default ../shared/eval)")
    p.add_argument(
        "--opensearch",
        default=None,
        help="also measure the OpenSearch engine: node URLs of a cluster (comma-separated), or 'local' "
        "for a two-node cluster started for the run (needs the launcher: bash scripts/run.sh)",
    )
    p.add_argument("--out", default="bench.json", help="JSON report (default bench.json)")


def add_reindex_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", help="corpus folder (default: $SEARCH_CORPUS_DIR or corpus/)")
    p.add_argument("--index", help="index root (default: $SEARCH_INDEX_DIR or index/)")
    p.add_argument(
        "--incremental", action="store_true", help="reanalyze only changed documents, add new ones, delete removed ones"
    )
    p.add_argument("--dry-run", action="store_true", help="read and split the corpus, report, write nothing")
    p.add_argument("--workers", type=int, help="processes for analysis (default: one per CPU core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-file messages")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary line")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SearchError as exc:
        print(f"search-service {args.command}: {exc.message}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"search-service {args.command}: interrupted", file=sys.stderr)
        return 130


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.from_env(index_dir=getattr(args, "index", None), corpus_dir=getattr(args, "corpus", None), **extra)


def cmd_reindex(args: argparse.Namespace) -> int:
    from search_service.ingest.reindex import build_index

    settings = _settings(args, workers=args.workers)
    bars = PhaseBars() if not args.quiet and sys.stderr.isatty() else None
    try:
        report = build_index(
            settings,
            incremental=args.incremental,
            dry_run=args.dry_run,
            progress=bars.show if bars is not None else None,
        )
    finally:
        if bars is not None:
            bars.close()
    if not args.quiet:
        for item in report.skipped:
            print(f"skipped {item['source']}: {item['reason']}", file=sys.stderr)
        for item in report.warnings:
            print(f"warning {item['source']}: {item['warning']}", file=sys.stderr)
    if args.json:
        data = report.as_dict()
        data["seconds"] = round(data["seconds"], 2)
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(reindex_summary(report))
    return EXIT_SKIPPED if report.skipped else EXIT_OK


class PhaseBars:
    """One named progress bar per reindex phase (tqdm), redrawn at most ten times a second."""

    UNITS: ClassVar[dict[str, str]] = {"reading": "file", "analyzing": "passage"}

    def __init__(self) -> None:
        self._bar: Any = None
        self._phase = ""

    def show(self, phase: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if phase != self._phase:
            self.close()
            self._phase = phase
            self._bar = tqdm(
                total=total,
                desc=f"{phase:<9}",
                unit=self.UNITS.get(phase, "step"),
                file=sys.stderr,
                mininterval=0.1,
                leave=True,
                bar_format=None if phase in self.UNITS else "{desc}: {percentage:3.0f}%|{bar}| {elapsed}",
            )
        self._bar.total = total
        self._bar.update(done - self._bar.n)  # tqdm redraws only every mininterval

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def reindex_summary(report: Any) -> str:
    """The one line reindex prints: what it read, what changed, what it skipped (by file type)."""
    if report.dry_run:
        where = "nothing written (dry run)"
    elif report.switched:
        where = f"version {report.version}"
    else:
        where = f"nothing changed: version {report.version} stays current"
    changes = (
        f" ({report.added} added, {report.changed} changed, {report.removed} removed)"
        if report.mode == "incremental"
        else ""
    )
    kinds = Counter(_file_type(item["source"]) for item in report.skipped)
    skipped = f"{len(report.skipped)} skipped" + (
        " (" + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) + ")" if kinds else ""
    )
    rate = f", {report.passages_per_second:.0f} passages/s" if report.switched else ""  # none written otherwise
    return (
        f"{report.mode}: {report.documents} documents{changes}, {report.passages} passages, {skipped}, "
        f"{report.seconds:.2f} s{rate}; {where}"
    )


def _file_type(source: str) -> str:
    name = source.rsplit(":", 1)[0] if source.rsplit(":", 1)[-1].isdigit() else source  # a jsonl line: file:line
    suffix = PurePosixPath(name).suffix.lower()
    return suffix or "(no extension)"


def cmd_serve(args: argparse.Namespace) -> int:
    from search_service.web.serve import serve

    return serve(_settings(args), host=args.host, port=args.port, workers=args.workers, timeout=args.timeout)


def cmd_search(args: argparse.Namespace) -> int:
    import dataclasses

    from search_service.search.request import SearchRequest
    from search_service.search.service import SearchService

    settings = _settings(args)
    result = SearchService(settings).search(
        SearchRequest.create(settings, q=args.q, size=args.size, collapse=args.collapse)
    )
    print(json.dumps(dataclasses.asdict(result), ensure_ascii=False, indent=1))
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    rows = Settings.from_env().describe()
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for name, _, default, _, help_text in rows:
            shown = f"`{str(default).lower() if isinstance(default, bool) else default}`" if default != "" else ""
            print(f"| `{name}` | {shown} | {help_text.replace('|', '&#124;')} |")
        return 0
    for name, kind, default, value, help_text in rows:
        print(f"{name}  ({kind}, default {default!r}, now {value!r})\n    {help_text}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from search_service.devtools.evaluate import evaluate

    report = evaluate(
        Settings.from_env(),
        args.corpus,
        args.queries,
        args.qrels,
        index_dir=args.index,
        run_file=args.run,
        spans=args.spans,
        candidates=args.candidates,
    )
    print(json.dumps(report.as_dict()) if args.json else report.summary())
    return 0


def cmd_longdocs(args: argparse.Namespace) -> int:
    from search_service.devtools.longdocs import build_long_collection

    print(build_long_collection(args.corpus, args.qrels, args.out).summary())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from search_service.devtools.bench.corpus import EVAL
    from search_service.devtools.bench.report import table
    from search_service.devtools.bench.run import main_bench

    report = main_bench(
        [int(s) for s in args.sizes.split(",")],
        args.queries,
        args.http_seconds,
        [int(c) for c in args.clients.split(",")],
        not args.no_peers,
        Path(args.out),
        eval_dir=Path(args.eval_dir) if args.eval_dir else EVAL,
        peer_sizes=[int(s) for s in args.peer_sizes.split(",")] if args.peer_sizes else None,
        repeat=args.repeat,
        opensearch=args.opensearch,
    )
    print(table(report))
    return 0


COMMANDS = {
    "reindex": cmd_reindex,
    "serve": cmd_serve,
    "search": cmd_search,
    "settings": cmd_settings,
    "evaluate": cmd_evaluate,
    "longdocs": cmd_longdocs,
    "bench": cmd_bench,
}

if __name__ == "__main__":
    sys.exit(main())
