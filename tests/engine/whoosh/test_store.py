"""A served version reads postings and stored fields with pread, and the term table mapped."""

import gc
import os

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from whoosh import index as whoosh_index
from whoosh.filedb.structfile import BufferFile

from search_service.engine.whoosh.codec import term_arrays
from search_service.engine.whoosh.layout import IndexRoot
from search_service.engine.whoosh.store import PreadFile, _Descriptor
from tests.helpers import open_version_index


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_every_term_and_stored_field_reads_as_through_whooshs_mapping(whoosh_seed_settings):
    path = IndexRoot(whoosh_seed_settings.index_dir).current_dir()
    mapped, pread = whoosh_index.open_dir(str(path)), open_version_index(path)
    with mapped.searcher() as a, pread.searcher() as b:
        ra, rb = a.reader(), b.reader()
        assert list(ra.all_stored_fields()) == list(rb.all_stored_fields())
        checked = 0
        for (sa, _), (sb, _) in zip(ra.leaf_readers(), rb.leaf_readers()):
            assert type(sb._perdoc._storage.open_file(sb._segment.make_filename(".pst"))) is PreadFile
            for field, tbytes in sa.all_terms():
                ta, tb = term_arrays(sa._terms, field, tbytes), term_arrays(sb._terms, field, tbytes)
                assert ta is not None and tb is not None
                assert list(ta[0]) == list(tb[0]) and list(ta[1]) == list(tb[1])
                # Whoosh's own matchers (phrases, filters) read the same postings.
                assert list(sa.postings(field, tbytes).all_ids()) == list(sb.postings(field, tbytes).all_ids())
                checked += 1
        assert checked > 1000


def test_a_dropped_version_closes_its_files_quietly(whoosh_seed_settings):
    # filterwarnings=error: an unclosed file would fail this test with a ResourceWarning.
    path = IndexRoot(whoosh_seed_settings.index_dir).current_dir()
    gc.collect()
    before = open_fds()
    ix = open_version_index(path)
    searcher = ix.searcher()
    assert searcher.document(passage_id=searcher.stored_fields(0)["passage_id"]) is not None
    assert open_fds() > before
    del ix, searcher
    gc.collect()
    assert open_fds() == before


@hsettings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.data())
def test_pread_file_reads_like_a_buffer_file(tmp_path_factory, data, draw):
    path = tmp_path_factory.mktemp("pread") / "f"
    pad = b"x" * 7  # the file starts at an offset of the descriptor's file
    path.write_bytes(pad + data + pad)
    descriptor = _Descriptor(os.open(path, os.O_RDONLY))
    ours, theirs = PreadFile(descriptor, len(pad), len(data)), BufferFile(data)
    for _ in range(draw.draw(st.integers(1, 8))):
        pos = draw.draw(st.integers(0, len(data) + 3))
        n = draw.draw(st.integers(0, 40))
        if draw.draw(st.booleans()):
            assert ours.get(pos, n) == theirs.get(pos, n)
        else:
            ours.seek(pos), theirs.seek(pos)
            assert ours.read(n) == theirs.read(n) and ours.tell() == theirs.tell()
    sub = ours.subset(min(3, len(data)), max(0, len(data) - 3))
    assert sub.get(0, 500) == data[3:]
    ours.close(), theirs.close()


def test_a_versions_parts_add_up_to_its_size(whoosh_seed_settings):
    """What `size_by_part` reports covers every byte of the version, under names that say
    what they hold (the byte table of docs/performance.md)."""
    from search_service.search.service import SearchService

    version = SearchService(whoosh_seed_settings).current().index
    parts = version.size_by_part()
    assert sum(parts.values()) == version.size_bytes()
    assert all(size >= 0 for size in parts.values())
    for name in (
        "whoosh postings",
        "whoosh terms",
        "ranking postings: body",
        "ranking postings: grams",
        "ranking postings: pairs",
        "ranking postings: table",
        "stored: text",
        "manifest.json",
    ):
        assert parts.get(name, 0) > 0, name
