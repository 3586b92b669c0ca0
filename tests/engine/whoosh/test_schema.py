"""The Whoosh schema's adapters over the text analysis."""

from search_service.engine.whoosh.schema import GramTokenizer, WordTokenizer, build_schema, whoosh_fields
from search_service.fields import FIELDS
from search_service.text.analysis import AnalysisConfig, get_analysis, gram_text

CONFIG = get_analysis(AnalysisConfig(userdict=("医保卡 2000 n", "社保卡 2000 n")))


def test_whoosh_tokenizer_emits_positions_and_original_chars():
    tok = WordTokenizer(CONFIG)
    out = [(t.text, t.pos, t.startchar, t.endchar) for t in tok("醫保卡密碼", positions=True, chars=True)]
    assert out == [("医保", 0, 0, 2), ("医保卡", 0, 0, 3), ("密码", 1, 3, 5)]


def test_gram_tokenizer_counts_what_it_emits():
    tok = GramTokenizer(CONFIG)
    emitted = [t.text for t in tok("醫保卡密碼")]
    keys, counts = tok.key_counts("醫保卡密碼")
    assert sorted(gram_text(int(k)) for k, n in zip(keys, counts) for _ in range(n)) == sorted(emitted)


def test_every_field_of_the_table_is_in_the_schema_and_fed_from_its_source():
    schema = build_schema(CONFIG)
    record = {
        "passage_id": "d#0",
        "doc_id": "d",
        "ordinal": 0,
        "start": 0,
        "end": 4,
        "text": "医保卡号",
        "title": "标题",
        "heading": "小标题",
        "source": "d.txt",
        "metadata": {"tags": "x"},
        "content_hash": "h",
        "filters": {"tags": "x"},
    }
    fields = whoosh_fields(record)
    for f in FIELDS:
        assert f.name in schema.names()
        assert fields[f.name] == record[f.source]
    assert fields["meta_tags"] == "x" and "filters" not in fields
    assert schema["body"].format.__class__.__name__ == "Positions"  # phrases run on the passage's words
