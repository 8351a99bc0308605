"""The search benchmark's corpus and its what-if index: real Korean and English, and no misses.

No timings: the benchmark prints those (python -m bench.search).
"""

from __future__ import annotations

import re

from bench import corpus
from bench.search import bitri_tokens, bitri_tsquery

HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN = re.compile(r"[A-Za-z]")


def test_messages_are_the_same_for_the_same_seed_and_differ_for_another():
    assert list(corpus.messages(200, seed=3)) == list(corpus.messages(200, seed=3))
    assert list(corpus.messages(200, seed=3)) != list(corpus.messages(200, seed=4))


def test_messages_are_chat_sized_and_mostly_korean_or_english_some_both():
    bodies = list(corpus.messages(2000, seed=19))
    assert all(1 <= len(body.split()) <= corpus.MAX_WORDS for body in bodies)
    korean = sum(1 for b in bodies if HANGUL.search(b) and not LATIN.search(b))
    english = sum(1 for b in bodies if LATIN.search(b) and not HANGUL.search(b))
    both = sum(1 for b in bodies if HANGUL.search(b) and LATIN.search(b))
    # Shares 0.6 / 0.3 / 0.1 (a Korean sentence may carry a Latin letter, a mixed one-word window may not).
    assert 1000 < korean < 1400
    assert 450 < english < 750
    assert 80 < both < 300
    # Korean with its particles glued on, as the search must find it: "법률" inside "법률로", "법률이".
    assert any(re.search(r"법률[이로에의은을]", b) for b in bodies)


def test_korean_is_read_from_konlpys_files_and_english_from_the_standard_library():
    assert (corpus.konlpy_corpus_dir() / "kolaw" / "constitution.txt").is_file()
    assert any("대한민국" in " ".join(words) for words in corpus.korean_sentences())
    assert len(corpus.english_sentences()) > 1000


def test_a_bitri_query_only_asks_for_lexemes_that_a_body_holding_its_terms_has():
    # No false negatives: for every term found in a body, the query's lexemes are the body's.
    for body in corpus.messages(300, seed=5):
        folded = corpus_fold(body)
        lexemes = set(bitri_tokens(folded))
        for word in re.findall(r"\w+", folded):
            for start in range(len(word)):
                for end in range(start + 1, min(len(word), start + 6) + 1):
                    term = word[start:end]
                    for part in bitri_tsquery([term]).split(" & "):
                        lexeme = part.removesuffix(":*").strip("'")
                        if part.endswith(":*"):
                            assert any(x.startswith(lexeme) for x in lexemes), (term, body)
                        else:
                            assert lexeme in lexemes, (term, body)


def corpus_fold(text: str) -> str:
    from search.text import fold

    return fold(text)
