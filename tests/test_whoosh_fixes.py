"""Each workaround in whoosh_fixes is shown to be needed, and to work."""

from whoosh import fields, query as wq
from whoosh.filedb.filestore import RamStorage

from search_service.whoosh_fixes import DisMax


def make_index():
    schema = fields.Schema(id=fields.ID(stored=True), body=fields.TEXT)
    ix = RamStorage().create_index(schema)
    with ix.writer() as w:
        w.add_document(id="a", body="alpha")
        w.add_document(id="b", body="beta beta beta beta")
        w.add_document(id="c", body="alpha gamma")
    return ix


def scores(ix, q):
    with ix.searcher() as s:
        return {hit["id"]: round(hit.score, 4) for hit in s.search(q, limit=None)}


def test_dismax_scores_each_document_by_its_own_best_match():
    ix = make_index()
    alone = {**scores(ix, wq.Term("body", "alpha")), **scores(ix, wq.Term("body", "beta"))}
    fixed = scores(ix, DisMax([wq.Term("body", "alpha"), wq.Term("body", "beta")]))
    assert fixed == alone
    upstream = scores(ix, wq.DisjunctionMax([wq.Term("body", "alpha"), wq.Term("body", "beta")]))
    assert upstream != alone  # the bug: "a" is scored with "b"'s beta score
