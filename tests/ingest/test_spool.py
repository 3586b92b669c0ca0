import os

import pytest

from search_service.ingest.corpus import Document
from search_service.ingest.spool import Spool


def test_documents_come_back_by_offset_in_any_order_and_in_a_forked_process(tmp_path):
    docs = [
        Document(f"d{i}", f"标题{i}", "医保卡密码" * (i + 1), f"d{i}.txt", metadata={"n": i}, pages=(0, 3))
        for i in range(5)
    ]
    with Spool(tmp_path) as spool:
        places = [spool.put(d) for d in docs]
        assert [spool.get(*where) for where in reversed(places)] == docs[::-1]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a writer reads its share with pread: no file position shared with the parent
            ok = spool.get(*places[3]) == docs[3] and spool.get(*places[0]) == docs[0]
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 1) == b"1"
    assert not list(tmp_path.iterdir())  # unlinked: nothing is left in the index folder, even while it is open


def test_a_short_spool_is_an_error_not_a_document(tmp_path):
    with Spool(tmp_path) as spool:
        offset, size = spool.put(Document("a", "", "正文", "a.txt"))
        with pytest.raises(OSError, match="short"):
            spool.get(offset, size + 10)


def test_a_prepared_spool_is_on_disk_before_writers_are_forked(tmp_path, make_settings):
    """A forked writer inheriting buffered bytes would write them again at the shared file
    position, while another writer may already be reading there: prepare leaves nothing buffered."""
    from search_service.ingest.prepare import prepare
    from tests.helpers import write_corpus

    corpus = write_corpus(
        tmp_path / "corpus", {f"d{i}.txt": f"第{i}篇：医保卡密码忘了怎么办，带身份证去银行重置。" for i in range(5)}
    )
    with Spool(tmp_path / "index") as spool:
        prepared = prepare(make_settings(corpus=corpus), spool)
        assert len(prepared.entries) == 5 and not any(e.whole for e in prepared.entries)
        assert os.fstat(spool._file.fileno()).st_size == sum(e.size for e in prepared.entries)


def test_a_long_documents_parts_come_back_one_at_a_time(tmp_path):
    parts = [
        Document("long", "标题", f"第{i}部分的正文\n" * 50, "long.txt", base=i * 350, more=i < 2) for i in range(3)
    ]
    with Spool(tmp_path) as spool:
        spool.put(Document("a", "", "前一篇", "a.txt"))
        offset = spool.size
        places = [spool.put(p) for p in parts]
        spool.put(Document("b", "", "后一篇", "b.txt"))
        assert places[0][0] == offset  # one after the other
        assert list(spool.parts(offset, sum(size for _, size in places))) == parts
        assert [spool.get(*where) for where in places] == parts
