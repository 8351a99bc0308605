"""search.text: folding, terms, n-gram lexemes and snippets (pure functions, no database)."""

from __future__ import annotations

import re

import pytest

from search import text


def test_fold_is_nfkc_and_case_folding():
    assert text.fold("ＡＢＣ Straße ｶﾀｶﾅ") == "abc strasse カタカナ"


def test_terms_keep_quoted_phrases_and_drop_what_another_term_holds():
    assert text.query_terms('  Meeting "Room 5"  meet 회의 회의 ') == ["meeting", "room 5", "회의"]
    words = [f"{a}{b}" for a in "ab" for b in "xyzuvwst"] + ["cc", "dd"]
    assert text.query_terms(" ".join(words)) == words[:8]
    assert text.query_terms('"  "') == []


def test_lexemes_are_each_words_bigrams_and_its_last_character():
    assert text.tokens("반갑습니다 hi a") == sorted({"반갑", "갑습", "습니", "니다", "다", "hi", "i", "a"})


@pytest.mark.parametrize(
    ("body", "term"),
    [("안녕하세요 반갑습니다", "반갑"), ("회의는 내일", "회의"), ("meeting", "eet"), ("meeting", "g"),
     ("meeting", "m"), ("東京タワー", "京タ"), ("snake_case", "e_c"), ("a-b", "a-b"), ("3시에", "3시"),
     ("ship it 🚀!", "🚀!"), ("100% sure", "0%"), ("it's", "t's"), ("a\\b", "a\\b")],
)  # fmt: skip
def test_every_substring_term_is_found_by_the_lexeme_query(body, term):
    """No false negatives: a document holding the term always has every lexeme the query asks for."""
    lexemes = set(text.tokens(text.fold(body)))
    query = text.tsquery([term])
    for part in query.split(" & "):
        lexeme = re.fullmatch(r"'(.*)'(:\*)?", part)
        written = lexeme.group(1).replace("''", "'").replace("\\\\", "\\")  # unquoted
        if lexeme.group(2):
            assert any(x.startswith(written) for x in lexemes), part
        else:
            assert written in lexemes, part


def test_punctuation_and_emoji_are_lexemes_of_their_own_so_the_index_narrows_them_too():
    assert text.tsquery(["?!", "🚀"]) == "'?' & '!' & '🚀'"
    assert text.tsquery(["it's"]) == "'''' & 'it' & 's':*"
    assert set(text.tokens("ship it 🚀!!")) >= {"🚀", "!"}
    assert " " not in text.tokens("a  b")


def test_a_snippet_marks_the_hits_and_cuts_long_bodies_around_the_first():
    assert text.snippet("Straße STRASSE", ["strasse"]) == [
        {"text": "Straße", "hit": True}, {"text": " ", "hit": False}, {"text": "STRASSE", "hit": True},
    ]  # fmt: skip
    long = "x" * 300 + " 회의는 " + "y" * 300
    segments = text.snippet(long, ["회의"], width=100)
    assert segments[0] == {"text": "…", "hit": False} and segments[-1] == {"text": "…", "hit": False}
    assert {"text": "회의", "hit": True} in segments
    assert sum(len(s["text"]) for s in segments[1:-1]) == 100
    assert text.snippet("no hit here", ["zzz"]) == [{"text": "no hit here", "hit": False}]


def test_relevance_orders_whole_words_then_word_starts_then_inner_matches():
    ranked = sorted(["explain", "plan b", "planning"], key=lambda t: text.relevance(t, ["plan"]), reverse=True)
    assert ranked == ["plan b", "planning", "explain"]
