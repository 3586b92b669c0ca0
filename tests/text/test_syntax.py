from hypothesis import given
from hypothesis import strategies as st

from search_service.text.syntax import Clause, parse_query


def test_plain_words():
    assert parse_query("医保卡 密码") == [Clause("医保卡"), Clause("密码")]


def test_operators():
    assert parse_query('"医保卡 密码" -银行 +解锁') == [
        Clause("医保卡 密码", "phrase"),
        Clause("银行", "text", "must_not"),
        Clause("解锁", "text", "must"),
    ]


def test_full_width_quotes_make_a_phrase():
    assert parse_query("“锁住”") == [Clause("锁住", "phrase")]


def test_unbalanced_quote_and_stray_syntax_are_plain_text():
    assert parse_query('"医保 卡') == [Clause("医保"), Clause("卡")]
    assert parse_query("title:x a:b (c) AND") == [Clause("title:x"), Clause("a:b"), Clause("(c)"), Clause("AND")]
    assert parse_query("- +") == [Clause("-"), Clause("+")]


@given(st.text(alphabet=st.sampled_from('ab医保 "“”+-:()*?~^\\'), max_size=40) | st.text(max_size=40))
def test_every_string_parses_into_non_empty_clauses(text):
    for clause in parse_query(text):
        assert clause.text.strip() or clause.kind == "text"
        assert clause.text


def test_corner_brackets_are_plain_text_not_phrase_quotes():
    assert parse_query("「媽祖在馬祖」這個口號") == [Clause("「媽祖在馬祖」這個口號")]
