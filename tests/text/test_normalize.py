from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from search_service.text.normalize import fold, normalize

TRADITIONAL = "醫保卡密碼輸錯後被鎖住銀行櫃臺體驗滑鼠軟體記憶體乾隆"
SIMPLIFIED = "医保卡密码输错后被锁住银行柜台体验鼠标软件内存干净"
WIDE = "ＡＢＣａｂｃ１２３！？（）　＠"
SPECIAL = "㎏①②㈱ﬁẞİ\u0301e\u0301"
EMOJI = "😀👍🏽🇨🇳"
OTHER = "abcXYZ0189 ,.;:!?、。，；「」『』\n\t"

mixed_text = st.text(
    alphabet=st.sampled_from(TRADITIONAL + SIMPLIFIED + WIDE + SPECIAL + EMOJI + OTHER), max_size=60
) | st.text(max_size=40)


def test_traditional_to_simplified_keeps_one_to_one_offsets():
    n = normalize("醫保卡密碼輸錯後被鎖住")
    assert n.text == "医保卡密码输错后被锁住"
    assert n.span(0, 3) == (0, 3)
    assert n.original[slice(*n.span(3, 5))] == "密碼"


def test_width_folding_and_lowercase():
    assert normalize("ＡＢＣ１２３ App").text == "abc123 app"


def test_length_changing_folds_map_back_to_their_source():
    n = normalize("重量5㎏①號")
    assert n.text == "重量5kg1号"
    k = n.text.index("kg")
    assert n.original[slice(*n.span(k, k + 2))] == "㎏"
    one = n.text.index("1")
    assert n.original[slice(*n.span(one, one + 1))] == "①"
    assert n.original[slice(*n.span(len(n.text) - 1, len(n.text)))] == "號"


def test_tw2sp_phrase_conversion_changes_words_but_not_spans():
    n = normalize("我的滑鼠和軟體", "tw2sp")
    assert n.text == "我的鼠标和软件"
    assert n.original[slice(*n.span(2, 4))] == "滑鼠"


def test_lone_surrogate_does_not_crash():
    assert normalize("a\ud800醫").text == "a\ufffd医"


@hsettings(max_examples=300, deadline=None)
@given(mixed_text, st.sampled_from(["t2s", "tw2s", "hk2s", "tw2sp"]))
def test_offset_map_is_total_ordered_and_in_bounds(text, config):
    n = normalize(text, config)
    assert len(n.starts) == len(n.ends) == len(n.text)
    for s, e in zip(n.starts, n.ends):
        assert 0 <= s < e <= len(text)
    assert list(n.starts) == sorted(n.starts)
    assert list(n.ends) == sorted(n.ends)


@hsettings(max_examples=300, deadline=None)
@given(mixed_text)
def test_every_normalized_char_comes_from_its_span(text):
    """Folding its original span reproduces the character (t2s is length-preserving)."""
    n = normalize(text, "t2s")
    for i, ch in enumerate(n.text):
        source = text[n.starts[i] : n.ends[i]]
        assert ch in normalize(source, "t2s").text or ch in fold(source)[0]


@hsettings(max_examples=200, deadline=None)
@given(mixed_text)
def test_normalization_is_idempotent_on_cjk_and_ascii(text):
    once = normalize(text).text
    assert normalize(once).text == normalize(once).text


def reference_fold(text):
    """The obvious per-cluster loop that the fast path in fold() must agree with."""
    import unicodedata

    out, starts, ends, i = [], [], [], 0
    while i < len(text):
        j = i + 1
        while j < len(text) and (unicodedata.combining(text[j]) or unicodedata.category(text[j]) == "Mn"):
            j += 1
        piece = text[i:j]
        folded = unicodedata.normalize("NFKC", piece).lower()
        folded = "".join(
            "\ufffd" if "\ud800" <= c <= "\udfff" else unicodedata.normalize("NFKC", c).lower() for c in folded
        )
        out.append(folded)
        starts += [i] * len(folded)
        ends += [j] * len(folded)
        i = j
    return "".join(out), starts, ends


@hsettings(max_examples=400, deadline=None)
@given(mixed_text)
def test_fast_fold_agrees_with_the_reference(text):
    folded, starts, ends = fold(text)
    assert (folded, list(starts), list(ends)) == reference_fold(text)


def test_per_character_caches_are_bounded_whatever_clients_send():
    from search_service.text import normalize as module

    rare = "".join(chr(c) for c in range(0x20000, 0x20000 + 20_000))  # 20,000 distinct CJK extension B characters
    for start in range(0, len(rare), 256):
        normalize(rare[start : start + 256])
    assert module._is_combining.cache_info().currsize <= 4096
    assert module._fold_char.cache_info().currsize <= 4096
