"""An incremental reindex writes the change as new segments, shares the rest with the
previous version, merges only as the tiered policy says, and ranks like a full rebuild."""

from __future__ import annotations

import json
import math

from whoosh import index as whoosh_index

from search_service.engine.whoosh import build as whoosh_build
from search_service.engine.whoosh.layout import IndexRoot
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from tests.engine.whoosh.test_writer import corpus_records, ranking_run
from tests.helpers import jsonl, write_corpus


def segment_files(settings, version: str) -> dict[str, int]:
    """The version's segment files and their inodes."""
    folder = IndexRoot(settings.index_dir).versions_dir / version
    return {p.name: p.stat().st_ino for p in folder.glob("*.seg")}


def segment_count(settings, version: str) -> int:
    return len(whoosh_index.open_dir(str(IndexRoot(settings.index_dir).versions_dir / version))._segments())


def tiers(settings, version: str) -> dict[int, int]:
    """How many segments each tier (live passages within a factor of SEGMENTS_PER_TIER) holds."""
    out: dict[int, int] = {}
    for s in whoosh_index.open_dir(str(IndexRoot(settings.index_dir).versions_dir / version))._segments():
        tier = int(math.log(s.doc_count(), whoosh_build.SEGMENTS_PER_TIER))
        out[tier] = out.get(tier, 0) + 1
    return out


def edit(corpus, records: list[dict], changed: range, added: int, removed: list[str]) -> list[dict]:
    records = [
        dict(r, text=r["text"] + f"\n第{i}次修订：医保卡密码可在银行重置。") if i in changed else r
        for i, r in enumerate(records)
        if r["id"] not in removed
    ]
    records += [
        {"id": f"new{len(records)}-{i}", "text": "新增的文档：社保卡激活以后医保卡也能用。"} for i in range(added)
    ]
    (corpus / "docs.jsonl").write_text(jsonl(*records), "utf-8")
    return records


def assert_ranks_like_a_full_rebuild(tmp_path, settings, name: str) -> None:
    full = settings.replace(index_dir=str(tmp_path / f"full-{name}"))
    build_index(full)
    assert ranking_run(settings) == ranking_run(full)


def test_an_incremental_reindex_writes_only_the_change_and_shares_the_rest(tmp_path, make_settings):
    records = [json.loads(line) for line in corpus_records(300, seed=21).splitlines()]
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": jsonl(*records)})
    settings = make_settings(corpus=corpus, workers=1)
    first = build_index(settings)
    before = segment_files(settings, first.version)
    edit(corpus, records, range(5, 8), added=1, removed=["d9"])
    report = build_index(settings, incremental=True)
    assert (report.added, report.changed, report.removed, report.reanalyzed) == (1, 3, 1, 4)
    after = segment_files(settings, report.version)
    kept = {name: inode for name, inode in after.items() if name in before}
    assert kept == before  # the old segment is the same file (a hard link), not a copy
    assert len(after) == len(before) + 1  # and the change is one new segment
    assert_ranks_like_a_full_rebuild(tmp_path, settings, "one")


def test_ties_go_to_the_passage_earlier_in_the_corpus_after_an_incremental_reindex(tmp_path, make_settings):
    same = "医保卡密码忘了可以到银行重置。"
    records = [{"id": "a", "text": same + "\n甲的其他内容。"}, {"id": "b", "text": same + "\n乙的其他内容。"}]
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": jsonl(*records)})
    settings = make_settings(corpus=corpus, workers=1)
    build_index(settings)
    records[0]["text"] = same + "\n甲改过的内容。"  # a is written again, after b
    (corpus / "docs.jsonl").write_text(jsonl(*records), "utf-8")
    build_index(settings, incremental=True)
    full = settings.replace(index_dir=str(tmp_path / "full"))
    build_index(full)
    runs = []
    for s in (settings, full):
        hits = SearchService(s).search(SearchRequest.create(s, q="银行重置")).hits
        runs.append([(h.passage_id, h.score) for h in hits])
    assert runs[0] == runs[1]
    assert runs[0][0][1] == runs[0][1][1] and [p for p, _ in runs[0][:2]] == ["a#0", "b#0"]


def test_segments_are_merged_by_tier_and_mostly_deleted_ones_rewritten(tmp_path, make_settings, monkeypatch):
    monkeypatch.setattr(whoosh_build, "SEGMENTS_PER_TIER", 3)
    records = [json.loads(line) for line in corpus_records(120, seed=5).splitlines()]
    corpus = write_corpus(tmp_path / "corpus", {"docs.jsonl": jsonl(*records)})
    settings = make_settings(corpus=corpus, workers=1)
    build_index(settings)
    counts = []
    for run in range(8):  # each run changes one document: a small new segment each time
        records = edit(corpus, records, range(run, run + 1), added=0, removed=[])
        report = build_index(settings, incremental=True)
        counts.append(segment_count(settings, report.version))
        assert max(tiers(settings, report.version).values()) < 3  # a full tier was merged
    assert counts[:3] == [2, 3, 2]  # the third small segment merged its tier into one
    assert_ranks_like_a_full_rebuild(tmp_path, settings, "tiers")
    # change more than a third of the documents: the big segment is mostly deleted, and rewritten
    records = edit(corpus, records, range(60), added=0, removed=[])
    report = build_index(settings, incremental=True)
    assert report.changed == 60
    assert segment_count(settings, report.version) <= 2
    assert_ranks_like_a_full_rebuild(tmp_path, settings, "rewrite")
