"""The benchmark's tables (Markdown), from its JSON report."""

from __future__ import annotations

from typing import Any


def _with_rounds(build: dict[str, Any]) -> str:
    """The ratio to the ceiling, and each round's when there were several: this
    machine's noise is about the size of a target's margin."""
    ratio = build.get("ceiling_ratio", "—")
    rounds = build.get("ceiling_rounds") or []
    return f"{ratio} ({', '.join(f'{r:.2f}' for r in rounds)})" if len(rounds) > 1 else str(ratio)


def table(report: dict[str, Any]) -> str:
    """The report as Markdown: builds and queries, servers, HTTP, the development
    collections, hostile files and clients."""
    lines = [
        *_index_table(report),
        *_parts_table(report),
        *_server_table(report),
        *_http_tables(report),
        *_dev_table(report),
        *_hostile_lines(report),
    ]
    return "\n".join(lines)


def _parts_table(report: dict[str, Any]) -> list[str]:
    """Our index's bytes a passage by part, at each size."""
    sizes = {
        size: row["index"]["ours"]["bytes_per_passage"]
        for size, row in report["sizes"].items()
        if "bytes_per_passage" in row["index"].get("ours", {})
    }
    if not sizes:
        return []
    parts = list(dict.fromkeys(part for by_part in sizes.values() for part in by_part))
    lines = [
        "",
        "Our index, bytes a passage by part:",
        "",
        "| part | " + " | ".join(map(str, sizes)) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    lines += [
        f"| {part} | " + " | ".join(f"{by_part.get(part, 0):.0f}" for by_part in sizes.values()) + " |"
        for part in parts
    ]
    totals = " | ".join(f"{sum(by_part.values()):.0f}" for by_part in sizes.values())
    return [*lines, f"| all | {totals} |"]


def _index_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "| passages | engine | index s | passages/s | × naive | × ceiling | index MB | peak MB (process RSS / all PSS) "
        "| cold p50 / p99 ms | warm p50 ms | warm p99 ms | warm p50 × naive |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, row in report["sizes"].items():
        naive = row["index"].get("naive")
        naive_q = row["queries"].get("naive")
        for engine, build in row["index"].items():
            q = row["queries"][engine]
            ratio = f"{build['passages_per_s'] / naive['passages_per_s']:.2f}" if naive else "—"
            qratio = f"{q['p50_ms'] / naive_q['p50_ms']:.2f}" if naive_q else "—"
            lines.append(
                f"| {size} | {engine} | {build['seconds']:.1f} | {build['passages_per_s']:.0f} | {ratio} | "
                f"{_with_rounds(build)} | {build['index_mb']} | {build['peak_rss_mb']} / "
                f"{build.get('peak_tree_mb')} | {q['cold_p50_ms']} / {q['cold_p99_ms']} | "
                f"{q['p50_ms']} | {q['p99_ms']} | {qratio} |"
            )
        alone = row["queries"].get("opensearch cluster alone")
        if alone:
            lines.append(
                f"| {size} | opensearch cluster alone (took p50 / p99 {alone['took_p50_ms']} / "
                f"{alone['took_p99_ms']} ms) | | | | | | | {alone['cold_p50_ms']} / {alone['cold_p99_ms']} | "
                f"{alone['p50_ms']} | {alone['p99_ms']} | |"
            )
        seg = row["segmentation_only"]
        lines.append(
            f"| {size} | jieba alone (1 core) | {seg['seconds']:.1f} | {seg['passages_per_s']:.0f} | | 1.00 "
            f"| | | | | | |"
        )
    return lines


def _server_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| passages | engine | cold start s | worker RSS MB | worker PSS MB | worker USS MB | worker anonymous MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, row in report["sizes"].items():
        for engine, probe in row.get("server", {}).items():
            lines.append(
                f"| {size} | {engine} | {probe['cold_start_s']} | {probe['worker_rss_mb']} | "
                f"{probe['worker_pss_mb']} | {probe['worker_uss_mb']} | {probe.get('worker_anon_mb', '')} |"
            )
    return lines


def _http_tables(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "http" in report:
        h = report["http"]
        for engine, run in h["variants"].items():
            lines += [
                "",
                f"HTTP, {engine}, {h['passages']} passages, gunicorn 2 workers (after the run: worker "
                f"RSS {run['worker_rss_mb']}, PSS {run['worker_pss_mb']}, USS {run['worker_uss_mb']} MB)",
                "",
                "| clients | /search rps | p50 ms | p99 ms | errors | /health rps | search / health |",
                "|---|---|---|---|---|---|---|",
            ]
            for s, hh in zip(run["search"], run["health"]):
                lines.append(
                    f"| {s['clients']} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} | {s['errors']} | "
                    f"{hh['rps']} | {s['rps'] / hh['rps']:.2f} |"
                )
    return lines


def _dev_table(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if report.get("dev_corpora"):
        d = report["dev_corpora"]
        lines += [
            "",
            f"The two development collections ({d['documents']} documents, {d['passages']} passages), "
            "median of three builds each:",
            "",
            "| build | seconds | peak MB (process RSS / all PSS) | × naive | share of a full build |",
            "|---|---|---|---|---|",
            f"| ours, full | {d['ours']['seconds']:.2f} | {d['ours']['peak_rss_mb']} / {d['ours']['peak_tree_mb']} "
            f"| {d['x_naive']} | 1 |",
            f"| ours, --incremental after {d['changed_documents']} documents changed | "
            f"{d['incremental']['seconds']:.2f} | {d['incremental']['peak_rss_mb']} / "
            f"{d['incremental']['peak_tree_mb']} | | {d['incremental_share_of_full']} |",
            f"| naive Whoosh + jieba | {d['naive']['seconds']:.2f} | {d['naive']['peak_rss_mb']} | 1.00 | |",
        ]
    return lines


def _hostile_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if report.get("hostile_files"):
        lines += [
            "",
            "Hostile files, each reindexed alone:",
            "",
            "| file | MB | seconds | budget s | peak RSS MB | passages |",
            "|---|---|---|---|---|---|",
        ]
        for name, f in report["hostile_files"].items():
            lines.append(
                f"| {name} | {f['mb']} | {f['seconds']} | {f['budget_s']} | {f['peak_rss_mb']} | {f['passages']} |"
            )
    if "hostile" in report:
        h = report["hostile"]
        hq, sc, inf = h["hostile"], h["slow_clients"], h["inflation"]
        lines += [
            "",
            f"Hostile clients: {hq['queries']} hostile 256-character queries: worst {hq['worst_ms']} ms, "
            f"p99 {hq['p99_ms']} ms, {hq['over_100_ms']:.1%} over 100 ms, statuses {hq['statuses']}; "
            f"normal requests while {sc['silent']} silent, {sc['trickling']} trickling and {sc['half_sent']} "
            f"half-sent connections are held: p99 {sc['p99_normal_ms']} ms, worst {sc['worst_normal_ms']} ms, "
            f"{sc['failed']} failed; worker RSS {inf['worker_rss_mb_before']} MB before and "
            f"{inf['worker_rss_mb_after']} MB after {inf['queries']} queries of 256 distinct rare characters "
            f"(normal queries' warm p50 {inf.get('warm_p50_ms_before')} ms before, "
            f"{inf.get('warm_p50_ms_after')} ms after).",
        ]
    return lines
