"""How message text is matched: folding, query terms, n-gram lexemes, highlighted snippets.

Pure functions, shared by every index backend and by the selector that checks and highlights
their hits, so "what matches" is decided in one place.

Matching is by substring, not by word: a term matches wherever it occurs in the folded text.
Korean glues particles and endings to words ("회의" + "는"), Chinese and Japanese do not separate
words at all, and a user typing "meet" expects "Meeting": whole-word matching (PostgreSQL's
``simple`` configuration, the previous search) finds none of these, and a dictionary-based
segmenter is a server plugin per language. Character n-grams need neither.

The PostgreSQL backend indexes each word's character bigrams, in every script: a 2-character
term, the most common length of a Korean word, is then one lexeme (pg_trgm's trigrams cannot
serve it). A term matches a document that holds all of its bigrams; the index finds those, and
a substring check on the folded text drops the few whose bigrams occur apart (bench/README.md,
"Search", has the measurements that chose this).
"""

from __future__ import annotations

import re
import unicodedata

# At most this many terms per query: each is an index lookup and a substring check.
MAX_TERMS = 8
# A term is a run of non-space characters, or a "quoted phrase" (spaces and all).
_TERM = re.compile(r'"([^"]+)"|(\S+)')
_WORD = re.compile(r"\w+")
_OTHER = re.compile(r"[^\w\s]")
ELLIPSIS = "…"


def fold(text: str) -> str:
    """``text`` as matching sees it: NFKC (full-width forms, compatibility characters) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def query_terms(q: str) -> list[str]:
    """The folded terms of a query, each to be found as a substring; "quoted words" stay one term.

    Duplicates, and terms contained in another term of the query, are dropped (they add nothing).
    """
    found: list[str] = []
    for match in _TERM.finditer(q or ""):
        term = fold(match.group(1) or match.group(2)).strip()
        term = " ".join(term.split())
        if term and term not in found:
            found.append(term)
    kept = [t for t in found if not any(t != other and t in other for other in found)]
    return kept[:MAX_TERMS]


def tokens(folded: str) -> list[str]:
    """The lexemes indexed for a folded text: each word's bigrams, and its last character alone;
    and each other character but spaces alone (punctuation, emoji).

    The last character alone lets a one-character term match at the end of a word (a prefix
    query ``c:*`` finds it everywhere else). The other characters let a query without a letter
    or digit ("🚀", "?!") narrow by the index too, instead of reading all of it. Sorted and
    distinct, as a tsvector keeps them.
    """
    lexemes: set[str] = set(_OTHER.findall(folded))
    for word in _WORD.findall(folded):
        lexemes.add(word[-1])
        lexemes.update(word[i : i + 2] for i in range(len(word) - 1))
    return sorted(lexemes)


def tsquery(terms: list[str]) -> str | None:
    """A PostgreSQL tsquery finding the documents whose lexemes can contain every term (None for
    no term, which the selector refuses before asking)."""
    parts: list[str] = []
    for term in terms:
        parts.extend(_quote(char) for char in _OTHER.findall(term))
        for word in _WORD.findall(term):
            if len(word) == 1:
                parts.append(f"{_quote(word)}:*")
            else:
                parts.extend(_quote(word[i : i + 2]) for i in range(len(word) - 1))
    if not parts:
        return None
    return " & ".join(dict.fromkeys(parts))


def _quote(lexeme: str) -> str:
    # A tsquery lexeme in quotes: only the quote and the backslash need escaping (\w has neither,
    # but a lexeme's safety must not depend on that).
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def like_pattern(term: str) -> str:
    """A SQL ``LIKE`` pattern finding ``term`` anywhere, its wildcards taken literally (backslash is
    LIKE's default escape)."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def matches(body: str, terms: list[str]) -> bool:
    """Whether every term occurs in the folded body: the final word on a backend's candidates."""
    folded = fold(body)
    return all(term in folded for term in terms)


def relevance(folded: str, terms: list[str]) -> float:
    """How well a folded text answers the terms: whole words beat word starts beat inner matches,
    and among equals a shorter message ranks higher (the hit is more of what it says)."""
    score = 0.0
    for term in terms:
        escaped = re.escape(term)
        if re.search(rf"(?<!\w){escaped}(?!\w)", folded):
            score += 3
        elif re.search(rf"(?<!\w){escaped}", folded):
            score += 2
        elif term in folded:
            score += 1
    return score + 1 / (1 + len(folded) / 80)


def _folded_with_map(body: str) -> tuple[str, list[int]]:
    # Folding can change lengths ("ß" -> "ss", "ﬁ" -> "fi"): fold character by character and keep,
    # for each folded character, the index of the body character it came from.
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(body):
        piece = fold(char)
        folded.append(piece)
        origin.extend([index] * len(piece))
    return "".join(folded), origin


def hit_spans(body: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the terms occur in ``body``: merged (start, end) character ranges, in order."""
    folded, origin = _folded_with_map(body)
    spans: list[tuple[int, int]] = []
    for term in terms:
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            spans.append((origin[start], origin[end - 1] + 1))
            start = folded.find(term, end)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def snippet(body: str, terms: list[str], *, width: int = 160) -> list[dict]:
    """The body, or a window of ``width`` characters of it around the first hit, as segments.

    ``[{"text": ..., "hit": bool}, ...]``: clients mark the hits without parsing markup (the body is
    user text and is never to be read as HTML). A cut is shown by an ``…`` segment.
    """
    spans = hit_spans(body, terms)
    start, end = 0, len(body)
    if len(body) > width:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - width // 4, len(body) - width))
        end = start + width
    segments: list[dict] = []
    if start > 0:
        segments.append({"text": ELLIPSIS, "hit": False})
    at = start
    for span_start, span_end in spans:
        span_start, span_end = max(span_start, start), min(span_end, end)
        if span_start >= span_end:
            continue
        if span_start > at:
            segments.append({"text": body[at:span_start], "hit": False})
        segments.append({"text": body[span_start:span_end], "hit": True})
        at = span_end
    if at < end:
        segments.append({"text": body[at:end], "hit": False})
    if end < len(body):
        segments.append({"text": ELLIPSIS, "hit": False})
    return segments
