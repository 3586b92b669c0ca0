import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from search_service.engine.whoosh.layout import IndexRoot
from search_service.ingest.reindex import build_index
from search_service.search.request import SearchRequest
from search_service.search.service import SearchService
from tests.helpers import ROOT, SEED_CORPUS, jsonl, load_script, settings_factory, write_corpus

reindex = load_script("reindex")  # scripts/reindex.py, called in-process

DOC_A = (
    "医保卡密码忘了怎么办\n忘记医保卡密码可以带上本人身份证和医保卡，"
    "到参保地医疗管理中心申请办理密码挂失，然后重新设置密码。"
)
DOC_B = "醫保卡被鎖如何解鎖\n輸入錯誤密碼的，必須持有效身份證件原件到社保卡管理中心辦理密碼重置或解鎖業務。"
DOC_C = (
    "社保卡怎么激活\n参保人需持本人社会保障卡、身份证明原件到对应银行营业网点激活社会保障卡，"
    "激活后医疗保险账户将恢复正常。"
)


def args(settings, *extra):
    return ["--corpus", settings.corpus_dir, "--index", settings.index_dir, "--quiet", *extra]


def test_reindex_script_on_the_bundled_corpus(tmp_path, make_settings, capsys):
    settings = make_settings(corpus=SEED_CORPUS)
    assert reindex.main(args(settings)) == 0
    out = capsys.readouterr().out
    assert "2 documents, 52 passages, 0 skipped" in out and "passages/s" in out
    root = IndexRoot(settings.index_dir)
    assert root.current_dir().is_dir()
    assert root.manifest(root.current_dir())["document_count"] == 2


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        reindex.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ["--corpus", "--index", "--incremental", "--dry-run", "--workers", "--quiet", "exit codes"]:
        assert option in text


def test_usage_error_exits_64(capsys):
    assert_exit(lambda: reindex.main(["--bogus"]), 64)


def assert_exit(call, code):
    with pytest.raises(SystemExit) as exc:
        call()
    assert exc.value.code == code


def test_bad_files_are_skipped_and_reported_exit_2(tmp_path, make_settings, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A, "bad.txt": b"\x00\x01\x02\x03", "e.txt": ""})
    settings = make_settings(corpus=corpus)
    assert reindex.main(["--corpus", str(corpus), "--index", settings.index_dir]) == 2
    err = capsys.readouterr().err
    assert "skipped bad.txt: binary file" in err and "skipped e.txt: empty file" in err
    service = SearchService(settings)
    assert service.search(SearchRequest.create(settings, q="医保卡")).total == 1


def test_failed_reindex_keeps_the_previous_version(tmp_path, make_settings, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    assert reindex.main(args(settings)) == 0
    before = IndexRoot(settings.index_dir).current_name()
    (corpus / "a.txt").write_bytes(b"\x00\x00binary")
    assert reindex.main(args(settings)) == 1
    assert "no readable documents" in capsys.readouterr().err
    assert reindex.main(["--corpus", str(tmp_path / "missing"), "--index", settings.index_dir]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert IndexRoot(settings.index_dir).current_name() == before
    assert SearchService(settings).search(SearchRequest.create(settings, q="医保卡")).total == 1


def test_a_second_concurrent_reindex_refuses(tmp_path, make_settings, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    with IndexRoot(settings.index_dir).lock():
        assert reindex.main(args(settings)) == 3
        assert "another reindex is running" in capsys.readouterr().err
    assert reindex.main(args(settings)) == 0


def test_dry_run_writes_nothing(tmp_path, make_settings, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    assert reindex.main(args(settings, "--dry-run")) == 0
    assert "nothing written" in capsys.readouterr().out
    assert not (Path(settings.index_dir) / "CURRENT").exists()


def test_old_versions_are_removed(tmp_path, make_settings):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    for _ in range(4):
        build_index(settings)
    root = IndexRoot(settings.index_dir)
    assert len(list(root.versions_dir.iterdir())) == 2
    assert root.current_dir() == root.complete_versions()[-1]


def test_a_reindex_first_removes_what_killed_runs_left_even_when_it_fails(tmp_path, make_settings, capsys):
    """Half-written versions of killed runs (no manifest) go when the next reindex takes the
    lock, not only after a successful switch: on a disk with room for one more version, one
    killed run used to make every later reindex fail (issue 38, 4)."""
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    assert reindex.main(args(settings)) == 0
    root = IndexRoot(settings.index_dir)
    current = root.current_name()
    for n in range(3):  # three killed runs' debris
        debris = root.versions_dir / f"29991231T000000.00000{n}-dead"
        debris.mkdir()
        (debris / "_MAIN_1.seg").write_bytes(b"x" * 1000)
    (corpus / "a.txt").write_bytes(b"\x00\x00binary")  # this run fails: nothing to index
    assert reindex.main(args(settings)) == 1
    assert "no readable documents" in capsys.readouterr().err
    assert [p.name for p in root.versions_dir.iterdir()] == [current]
    assert root.current_name() == current


def test_a_removal_killed_part_way_never_leaves_a_complete_looking_version(tmp_path, make_settings, monkeypatch):
    """A version is removed manifest first: killed in the middle, what is left is an
    unfinished build (never served, removed by the next reindex), not a "complete" version
    that cannot be read."""
    from search_service.engine.whoosh import layout

    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus, keep_versions=1)
    build_index(settings)
    root = IndexRoot(settings.index_dir)
    old = root.current_name()
    build_index(settings.replace(keep_versions=2))  # two complete versions now

    def killed(path, ignore_errors=False):
        raise SystemExit("killed while removing")

    monkeypatch.setattr(layout.shutil, "rmtree", killed)
    with pytest.raises(SystemExit):
        root.clean(1)
    monkeypatch.undo()
    assert (root.versions_dir / old).is_dir()
    assert old not in [p.name for p in root.complete_versions()]
    assert root.discard_unfinished() == [old]
    assert [p.name for p in root.complete_versions()] == [root.current_name()]


QUERIES = ["医保卡密码", "解锁", "社保卡激活", "锁", "身份证", "醫保卡", "银行", "密码 -挂失", '"社会保障卡"']


def snapshot(settings):
    service = SearchService(settings)
    version = service.current()
    documents = service.engine.previous().documents
    stored = sorted(
        (f["passage_id"], f["text"], f["start"], f["end"], f["heading"], f["title"])
        for doc_id in documents
        for f in version.index.document(doc_id, 0, 1000)[0]
    )
    results = {
        q: [
            (h.passage_id, h.score, h.matches)
            for h in service.search(SearchRequest.create(settings, q=q, size=20)).hits
        ]
        for q in QUERIES
    }
    return stored, results


def test_incremental_gives_the_same_passages_and_results_as_a_full_rebuild(tmp_path, make_settings):
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "a.txt": DOC_A,
            "b.txt": DOC_B,
            "c.txt": DOC_C,
            "e.txt": "补充说明\n社保卡怎么激活\n参保人可以在手机上激活社保卡，也可以去银行网点办理。",
            "faq.jsonl": jsonl(
                {"id": "q1", "text": DOC_C + "另有说明。", "category": "faq"}, {"id": "q2", "text": DOC_B}
            ),
        },
    )
    settings = make_settings(corpus=corpus, boilerplate_min_documents=2)
    build_index(settings)
    (corpus / "a.txt").write_text(DOC_A + "\n补充：也可以拨打12333咨询。", encoding="utf-8")  # edited
    (corpus / "c.txt").unlink()  # deleted
    (corpus / "d.md").write_text(
        "# 新文档\n\n医保卡被锁住了可以去银行解锁，也可以去社保局。", encoding="utf-8"
    )  # added
    report = build_index(settings, incremental=True)
    assert report.mode == "incremental" and (report.added, report.changed, report.removed) == (1, 2, 1)
    # a.txt edited, d.md added, and e.txt: its line 社保卡怎么激活 stood alone and was
    # chrome (repeated in c.txt) and no longer is, so its passages change too. b.txt and
    # the jsonl records are untouched: q1 shares that line too, but a record's text is
    # its own (never chrome for being shared).
    assert (report.reanalyzed, report.removed) == (3, 1)
    incremental = snapshot(settings)

    full_settings = settings.replace(index_dir=str(tmp_path / "full"))
    build_index(full_settings)
    assert incremental == snapshot(full_settings)


def test_a_version_of_an_older_layout_is_not_opened_and_is_rebuilt(tmp_path, make_settings, monkeypatch):
    import json

    from search_service.engine.whoosh.engine import WhooshEngine
    from search_service.errors import IndexUnavailable

    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", {"a.txt": DOC_A}))
    # A version written by an older release, in another posting layout.
    monkeypatch.setattr(WhooshEngine, "layout", 1)
    build_index(settings)
    monkeypatch.undo()
    root = IndexRoot(settings.index_dir)
    manifest = json.loads((root.current_dir() / "manifest.json").read_text("utf-8"))
    assert manifest["schema_version"] == 1
    with pytest.raises(
        IndexUnavailable,
        match=f"layout 1, this release reads layout {WhooshEngine.layout}: run `search-service reindex`",
    ):
        SearchService(settings).current()
    report = build_index(settings, incremental=True)
    assert report.mode.startswith("full")
    assert SearchService(settings).search(SearchRequest.create(settings, q="医保卡密码")).total == 1


@pytest.mark.parametrize("delay", [0.0, 0.4, 1.2], ids=["at-start", "writing", "later"])
def test_a_killed_reindex_leaves_the_previous_version_current(tmp_path, make_settings, delay):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    build_index(settings)
    root = IndexRoot(settings.index_dir)
    before = root.current_name()
    # A corpus big enough that the build takes a few seconds (300 of these files took 1.4 s,
    # so that the latest kill sometimes came after the switch).
    big = "\n".join([DOC_A, DOC_B, DOC_C] * 4).split("\n")
    for i in range(1000):
        text = "\n".join(f"第{i}号：{line}" for line in big)
        (corpus / f"big{i}.txt").write_text(text, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "search_service.cli", "reindex", *args(settings, "--workers", "1")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(root.versions_dir.iterdir())) < 2:
        time.sleep(0.02)
    time.sleep(delay)
    assert proc.poll() is None, "the reindex ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert root.current_name() == before
    service = SearchService(settings)
    assert service.search(SearchRequest.create(settings, q="医保卡")).total == 1
    report = build_index(settings)
    assert report.switched and report.documents == 1001
    assert sorted(p.name for p in root.versions_dir.iterdir()) == sorted([before, report.version])


def test_a_killed_parallel_reindex_takes_its_writers_and_the_lock_with_it(tmp_path, make_settings):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    build_index(settings)
    big = "\n".join([DOC_A, DOC_B, DOC_C] * 4).split("\n")
    for i in range(300):
        (corpus / f"big{i}.txt").write_text("\n".join(f"第{i}号：{line}" for line in big), encoding="utf-8")
    code = (
        "import sys; from search_service.ingest import reindex; reindex.PARALLEL_MIN_PASSAGES = 50; "
        "from search_service.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "reindex", *args(settings, "--workers", "2")],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import psutil

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(psutil.Process(proc.pid).children()) < 2:
        time.sleep(0.02)
    writers = psutil.Process(proc.pid).children()
    assert len(writers) == 2, "the writer processes never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _gone, alive = psutil.wait_procs(writers, timeout=2)
    assert alive == []  # the writers died with their parent
    report = build_index(settings)  # and the lock they held is free at once
    assert report.switched and report.documents == 301


def test_incremental_on_a_damaged_current_version_builds_it_all_anew(tmp_path, make_settings):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A, "b.txt": DOC_B})
    settings = make_settings(corpus=corpus)
    build_index(settings)
    root = IndexRoot(settings.index_dir)
    for f in root.current_dir().iterdir():
        if f.suffix == ".seg":
            f.write_bytes(f.read_bytes()[:20])  # truncated on disk
    (corpus / "c.txt").write_text(DOC_C, encoding="utf-8")
    report = build_index(settings, incremental=True)
    assert report.switched and report.mode.startswith("full (the current version cannot be read")
    assert report.reanalyzed == 3
    result = SearchService(settings).search(SearchRequest.create(settings, q="社保卡激活"))
    assert result.hits and result.hits[0].doc_id == "c"


@pytest.mark.parametrize("where", ["lock", "version"])
def test_an_index_folder_that_cannot_be_written_is_one_line_and_exit_1(
    tmp_path, make_settings, monkeypatch, capsys, where
):
    import errno

    corpus = write_corpus(tmp_path / "corpus", {"a.txt": DOC_A})
    settings = make_settings(corpus=corpus)
    assert reindex.main(args(settings)) == 0
    original = Path.mkdir

    def read_only(self, *a, **k):
        if (where == "lock" and self == Path(settings.index_dir)) or (where == "version" and "versions" in str(self)):
            raise OSError(errno.EROFS, "Read-only file system")
        return original(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", read_only)
    capsys.readouterr()
    assert reindex.main(args(settings)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Read-only file system" in err and "Traceback" not in err


def test_an_incremental_run_that_finds_nothing_changed_keeps_the_current_version(tmp_path, make_settings, capsys):
    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", {"a.txt": DOC_A, "b.txt": DOC_B}))
    assert reindex.main(args(settings)) == 0
    first = IndexRoot(settings.index_dir).current_dir()
    capsys.readouterr()
    assert reindex.main(args(settings, "--incremental")) == 0
    out = capsys.readouterr().out
    assert "incremental (nothing changed)" in out and f"version {first.name} stays current" in out
    assert IndexRoot(settings.index_dir).current_dir() == first
    assert len(list(IndexRoot(settings.index_dir).versions_dir.iterdir())) == 1  # no new version written
    (Path(settings.corpus_dir) / "c.txt").write_text(DOC_C, encoding="utf-8")
    assert reindex.main(args(settings, "--incremental")) == 0
    assert "(1 added, 0 changed, 0 removed)" in capsys.readouterr().out


def test_every_file_is_indexed_or_reported_by_type(tmp_path, make_settings, capsys):
    outside = tmp_path / "secret.txt"
    outside.write_text("root:*:19000:0:99999:7:::", encoding="utf-8")
    corpus = write_corpus(
        tmp_path / "corpus",
        {"a.txt": DOC_A, "photo.png": b"\x89PNG", "notes.xyz": "x", ".hidden.txt": DOC_B, "sub/b.txt": DOC_B},
    )
    (corpus / "link.txt").symlink_to(outside)
    (corpus / "linked").symlink_to(tmp_path, target_is_directory=True)
    with open(os.path.join(os.fsencode(corpus), b"bad\xff name.txt"), "wb") as f:  # not UTF-8
        f.write(DOC_C.encode("utf-8"))
    settings = make_settings(corpus=corpus)
    assert reindex.main(["--corpus", str(corpus), "--index", settings.index_dir, "--json"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["documents"] == 2 and isinstance(report["seconds"], float)
    reasons = {item["source"]: item["reason"] for item in report["skipped"]}
    assert reasons["photo.png"] == "unsupported file type '.png'"
    assert reasons["notes.xyz"] == "unsupported file type '.xyz'"
    assert reasons[".hidden.txt"] == "a hidden file, not read"
    assert reasons["link.txt"] == "a symbolic link to a file outside the corpus folder, not followed"
    assert reasons["linked"] == "a symbolic link to a folder, not followed"
    assert reasons["bad\\udcff name.txt"] == "the file name is not valid UTF-8; rename it"
    assert "root:*" not in captured.out + captured.err
    assert reindex.main(args(settings)) == 2
    summary = capsys.readouterr().out
    assert "6 skipped (1 '.png'" not in summary and "6 skipped (" in summary and "1 .png" in summary


def test_no_faq_entry_loses_its_text_to_the_chrome_filter(tmp_path, make_settings, capsys):
    """Entries repeat their question lines. A jsonl record's text is its own: the lines it
    shares with others are content, in every record that holds them."""
    shared = ["医保卡密码怎么修改", "社保卡在哪里激活"]
    entries = [
        {"id": f"e{i}", "title": f"问题{i}", "text": f"{shared[0]}\n{shared[1]}\n回答{i}：请带身份证到网点办理"}
        for i in range(4)
    ]
    entries.append({"id": "only-shared", "title": "常见问题", "text": "\n".join(shared)})
    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", {"faq.jsonl": jsonl(*entries)}))
    assert reindex.main(["--corpus", settings.corpus_dir, "--index", settings.index_dir, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == 5 and report["skipped"] == [] and report["warnings"] == []
    service = SearchService(settings)
    assert [p.text for p in service.document("only-shared").passages] == ["\n".join(shared)]
    for i in range(4):
        assert service.document(f"e{i}").passages[0].text == f"{shared[0]}\n{shared[1]}\n回答{i}：请带身份证到网点办理"
    assert service.search(SearchRequest.create(settings, q="社保卡在哪里激活")).total == 5


def test_a_page_of_nothing_but_shared_lines_is_kept_whole(tmp_path, make_settings, capsys):
    """Scraped pages repeat a menu: on each page it is chrome, standing alone; a page that is
    nothing but those lines is kept whole, with a warning."""
    menu = ["医保卡密码怎么修改", "社保卡在哪里激活"]
    pages = {f"p{i}.txt": f"页面{i}\n{menu[0]}\n{menu[1]}\n\n回答{i}：请带身份证到网点办理。" for i in range(4)}
    pages["menu.txt"] = "常见问题\n" + "\n".join(menu)
    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", pages))
    assert reindex.main(["--corpus", settings.corpus_dir, "--index", settings.index_dir, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [w["source"] for w in report["warnings"]] == ["menu.txt"]
    service = SearchService(settings)
    assert [p.text for p in service.document("menu").passages] == ["\n".join(menu)]
    for i in range(4):  # the menu is chrome for the pages that hold it (5 documents)
        assert [p.text for p in service.document(f"p{i}").passages] == [f"回答{i}：请带身份证到网点办理。"]


def test_progress_comes_in_named_phases(tmp_path, make_settings, capsys):
    settings = make_settings(corpus=write_corpus(tmp_path / "corpus", {"a.txt": DOC_A, "b.txt": DOC_B}))
    seen: list[tuple[str, int, int]] = []
    build_index(settings, progress=lambda phase, done, total: seen.append((phase, done, total)))
    phases = [p for i, (p, _, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != p]
    assert phases == ["reading", "analyzing", "writing", "checking"]
    assert ("reading", 2, 2) in seen and seen[-1] == ("checking", 1, 1)
    assert max(done for p, done, _ in seen if p == "analyzing") == build_index(settings).passages
    from search_service.cli import PhaseBars

    bars = PhaseBars()
    for phase, done, total in seen:
        bars.show(phase, done, total)
    bars.close()
    err = capsys.readouterr().err
    assert all(name in err for name in ("reading", "analyzing", "writing", "checking"))


def test_shares_are_balanced_on_text_not_on_passage_counts():
    """A writer's time goes with the text it segments: two long one-passage documents
    and many short ones make two shares of about as much work (text, and a little per
    passage), though not of as many passages."""
    from search_service.ingest.prepare import Entry
    from search_service.ingest.reindex import PASSAGE_CHARACTERS, _shares

    def entry(doc_id: str, chars: int) -> Entry:
        return Entry(doc_id, "x", 0, 0, chars, 1, "", False)

    entries = [entry(f"long{i}", 20000) for i in range(2)] + [entry(f"short{i}", 100) for i in range(200)]
    shares = _shares(entries, 2)
    sizes = [sum(e.chars + PASSAGE_CHARACTERS for e in share) for share in shares]
    assert [e for share in shares for e in share] == entries  # in order, nothing lost
    assert max(sizes) < 1.5 * min(sizes)


_POOL = [
    "首页 | 关于我们 | 联系方式",
    "版权所有 2024 某某网站",
    "医保卡密码忘了怎么办",
    "忘记医保卡密码可以带上本人身份证和医保卡，到参保地医疗管理中心申请办理密码挂失。",
    "换一批",
    "輸入錯誤密碼的，必須持有效身份證件原件到社保卡管理中心辦理密碼重置或解鎖業務。",
]


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_POOL), min_size=1, max_size=5), min_size=1, max_size=7),
    st.integers(min_value=1, max_value=3),
)
def test_a_corpus_read_once_splits_as_if_the_chrome_were_known_from_the_start(tmp_path_factory, texts, min_documents):
    """Documents are split as they are read, before the chrome is known, and only those holding a
    chrome line are split again: every entry is what splitting with the whole corpus's chrome gives."""
    from search_service.ingest.corpus import CorpusReader
    from search_service.ingest.passages import PassageSplitter, repeated_lines
    from search_service.ingest.prepare import _entry, prepare
    from search_service.ingest.spool import Spool

    root = tmp_path_factory.mktemp("case")
    corpus = write_corpus(root / "corpus", {f"d{i}.txt": "\n".join(lines) for i, lines in enumerate(texts)})
    config = settings_factory(root)(corpus=corpus, boilerplate_min_documents=min_documents)
    documents = CorpusReader(corpus).read().documents
    splitter = PassageSplitter(
        config.passage_min_chars, config.passage_max_chars, repeated_lines(documents, min_documents)
    )
    with Spool(root) as spool:
        prepared = prepare(config, spool)
        assert [(e.doc_id, e.passages, e.hash, e.whole) for e in prepared.entries] == [
            (e.doc_id, e.passages, e.hash, e.whole)
            for e in (_entry([d], splitter, spool, 0, 0) for d in documents)
            if e
        ]
        for entry, doc in zip(prepared.entries, documents):
            spooled, passages = prepared.passages(entry)
            assert (spooled, list(passages)) == (doc, splitter.split(doc, keep_chrome=entry.whole))


_CHROME = "版权所有 2024 某某网站"
_LONG = "\n".join(
    ["长文件的标题", "一、总则"]
    + [f"第{i}条 {DOC_A.splitlines()[1]}" if i % 7 else _CHROME for i in range(1, 120)]
    + ["二、附则", "结尾条款：社保卡激活后医疗保险账户恢复正常。"]
)


def _parted(monkeypatch):
    from search_service.ingest import corpus as corpus_module

    monkeypatch.setattr(corpus_module, "PART_BYTES", 1000)
    monkeypatch.setattr(corpus_module, "PART_CHARS", 500)


def test_a_long_file_is_indexed_in_parts_as_its_whole_text(tmp_path, make_settings, monkeypatch):
    """Read in parts (a file above PART_BYTES), a long file gives the passages its whole text
    gives, with the corpus's chrome dropped, offsets into its whole text; --incremental sees it
    unchanged, or changed when a line of a later part changes."""
    from search_service.ingest.prepare import prepare
    from search_service.ingest.spool import Spool

    corpus = write_corpus(
        tmp_path / "corpus", {"long.txt": _LONG, "a.txt": DOC_A + "\n" + _CHROME, "b.txt": DOC_B + "\n" + _CHROME}
    )
    settings = make_settings(corpus=corpus)

    def passages() -> dict:
        with Spool(tmp_path) as spool:
            prepared = prepare(settings, spool)
            return {e.doc_id: (e.parts, e.passages, e.chars, list(prepared.passages(e)[1])) for e in prepared.entries}

    whole = passages()
    _parted(monkeypatch)
    parted = passages()
    assert whole["long"][0] == 1 and parted["long"][0] > 5
    assert {k: v[1:] for k, v in parted.items()} == {k: v[1:] for k, v in whole.items()}
    texts = [p.text for p in parted["long"][3]]
    assert not any(_CHROME in t for t in texts) and "长文件的标题" not in texts[0] and texts[0].startswith("第1条")

    report = build_index(settings)
    assert (report.documents, report.passages) == (3, sum(v[1] for v in whole.values()))
    hit = SearchService(settings).search(SearchRequest.create(settings, q="结尾条款")).hits[0]
    assert (hit.doc_id, hit.title, hit.text) == ("long", "长文件的标题", _LONG[hit.start : hit.end])
    assert build_index(settings, incremental=True).mode == "incremental (nothing changed)"
    (corpus / "long.txt").write_text(_LONG.replace("结尾条款", "最后条款"), encoding="utf-8")
    report = build_index(settings, incremental=True)
    assert (report.mode, report.changed, report.added) == ("incremental", 1, 0)
    assert SearchService(settings).search(SearchRequest.create(settings, q="最后条款")).hits[0].doc_id == "long"


def test_a_long_file_that_fails_part_way_is_skipped_and_the_rest_indexed(tmp_path, make_settings, monkeypatch):
    """A read error after some parts of a long file (a disk error, the file replaced): the file is
    reported and none of it indexed, and its lines do not count towards the corpus's chrome."""
    from search_service.ingest import corpus as corpus_module

    _parted(monkeypatch)
    real = corpus_module._text_parts

    def failing(*args, **kwargs):
        parts = real(*args, **kwargs)
        yield next(parts)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(corpus_module, "_text_parts", failing)
    corpus = write_corpus(
        tmp_path / "corpus",
        {"long.txt": _CHROME + "\n" + _LONG, "a.txt": DOC_A + "\n" + _CHROME, "b.txt": DOC_B + "\n" + _CHROME},
    )
    settings = make_settings(corpus=corpus, boilerplate_min_documents=3)
    report = build_index(settings)
    assert (report.documents, report.skipped) == (
        2,
        [{"source": "long.txt", "reason": "cannot read file: Input/output error"}],
    )
    # Two documents hold the line: below the threshold, it is their text.
    result = SearchService(settings).search(SearchRequest.create(settings, q="版权所有"))
    assert sorted(h.doc_id for h in result.hits) == ["a", "b"]
