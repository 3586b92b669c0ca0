"""Each workaround in whoosh_fixes is shown to be needed, and to work."""

from whoosh import fields, query as wq
from whoosh.filedb.filestore import RamStorage


def test_inlining_codec_writes_reads_and_merges_short_posting_lists():
    import pytest
    from whoosh.codec.whoosh3 import W3Codec

    from search_service.whoosh_fixes import InliningCodec

    schema = fields.Schema(id=fields.ID(stored=True, unique=True), body=fields.TEXT(phrase=False),
                           pos=fields.TEXT(phrase=True))
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
