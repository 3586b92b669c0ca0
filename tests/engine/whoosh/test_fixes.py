"""Each workaround in whoosh_fixes is shown to be needed, and to work."""

from whoosh import fields
from whoosh import query as wq
from whoosh.filedb.filestore import RamStorage


def test_inlining_codec_writes_reads_and_merges_short_posting_lists():
    import pytest
    from whoosh.codec.whoosh3 import W3Codec

    from search_service.engine.whoosh.fixes import InliningCodec

    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True), body=fields.TEXT(phrase=False), pos=fields.TEXT(phrase=True)
    )
    with pytest.raises(AttributeError, match="set_inline"):
        ix = RamStorage().create_index(schema)
        with ix.writer(codec=W3Codec(inlinelimit=8)) as w:
            w.add_document(id="x", body="alpha", pos="alpha")
    ix = RamStorage().create_index(schema)
    with ix.writer(codec=InliningCodec()) as w:
        for i in range(5):
            w.add_document(id=str(i), body=f"alpha beta{i}", pos=f"one two three{i}")
    w = ix.writer(codec=InliningCodec())
    w.delete_by_term("id", "0")
    w.add_document(id="5", body="alpha", pos="one two")
    w.commit(optimize=True)
    with ix.searcher() as s:
        assert sorted(h["id"] for h in s.search(wq.Term("body", "alpha"), limit=None)) == ["1", "2", "3", "4", "5"]
        assert [h["id"] for h in s.search(wq.Term("body", "beta3"))] == ["3"]
        assert len(s.search(wq.Phrase("pos", ["one", "two"]), limit=None)) == 5


def test_compound_segment_files_are_read_in_place_not_copied(tmp_path):
    from whoosh import index as whoosh_index
    from whoosh.filedb.structfile import BufferFile

    from search_service.engine.whoosh.store import PreadFile, PreadStorage, open_index

    schema = fields.Schema(id=fields.ID(stored=True), body=fields.TEXT(phrase=True))
    ix = whoosh_index.create_in(str(tmp_path), schema)
    with ix.writer() as w:
        for i in range(300):
            w.add_document(id=str(i), body=f"alpha beta gamma{i % 7} delta{i}")
    # The bug: upstream wraps a mapped segment's buffer in BytesIO, which reads from a
    # copy (a change to the underlying memory is not seen): every file of a segment
    # is copied into the process's memory when opened.
    data = bytearray(b"0123456789" * 100)
    upstream = BufferFile(memoryview(data))
    data[0:4] = b"ABCD"
    assert upstream.read(4) == b"0123"
    upstream.close()
    # The workaround: no mapping; each file of a compound segment is a pread view of the
    # segment's file (its subset), never a copy.
    assert PreadStorage(str(tmp_path)).supports_mmap is False
    ours = open_index(tmp_path, schema)
    with ours.searcher() as s:
        for reader, _ in s.reader().leaf_readers():
            segment = reader._storage.a  # the compound segment's storage (under an overlay)
            assert type(segment._file) is PreadFile and not segment._source  # not mapped
            assert type(segment.open_file(reader._segment.make_filename(".pst"))) is PreadFile
        assert [h["id"] for h in s.search(wq.Phrase("body", ["beta", "gamma3"]), limit=None)][:2] == ["3", "10"]
        assert s.doc_count() == 300
