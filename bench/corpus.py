"""Chat-like messages in Korean and English from real text, for the search benchmark.

Korean comes from the corpora bundled in the ``konlpy`` wheel (the Constitution of the Republic of
Korea and ten National Assembly bills: real Korean with its particles and endings glued to the
words); the files are read from the installed package's folder, never imported (importing konlpy
starts a Java VM). English comes from the docstrings of Python's standard library, read with
``ast`` from its source files (what ``inspect.getdoc`` returns, without importing modules that
act on import). Both are on every machine that installed requirements-dev.txt: no network.

Messages are windows of 1-30 consecutive words from one sentence (short ones most often, as in a
chat), mostly Korean or English and some both; the same seed gives the same messages.
"""

from __future__ import annotations

import ast
import importlib.util
import random
import re
import sysconfig
from collections.abc import Iterator
from functools import cache
from pathlib import Path

# Shares of the messages: Korean only, English only, the rest one of each.
KOREAN_SHARE = 0.6
ENGLISH_SHARE = 0.3
MAX_WORDS = 30
# Mean words of a message beyond the first: most chat messages are a few words long.
MEAN_EXTRA_WORDS = 5.0

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_PAGE_NUMBER = re.compile(r"^\s*-\s*\d+\s*-\s*$")
# The bills' comparison tables and their layout: rows of dashes, "(생  략)" cells.
_LAYOUT = re.compile(r"-{3,}|…{2,}|·{3,}|_{3,}")
_CIRCLED = re.compile(r"[\u2460-\u24ff]")
# Standard-library folders that are not prose about the library (tests, the IDE, vendored tools).
_STDLIB_SKIP = {
    "test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "site-packages",
    "dist-packages", "__pycache__", "venv",
}  # fmt: skip


def konlpy_corpus_dir() -> Path:
    """The folder of konlpy's bundled corpora, found without importing konlpy."""
    spec = importlib.util.find_spec("konlpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("konlpy is not installed: pip install -r requirements-dev.txt -c constraints.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "corpus"


def _unwrap(text: str) -> str:
    """The bills' text with its fixed-width line wrapping undone.

    A line wrapped between two words ends in a space, one wrapped inside a word does not
    ("필요" + "한 나이"): joining the lines as they are restores both. Page numbers go.
    """
    lines = [line for line in text.splitlines() if line.strip() and not _PAGE_NUMBER.match(line)]
    joined = ""
    for line in lines:
        if joined and (joined.endswith(" ") or line[:1].isspace()):
            joined = joined.rstrip() + " " + line.strip()
        elif joined and joined[-1] in ".:)" and not line[:1].isdigit():
            joined += " " + line.strip()
        else:
            joined += line.strip() if joined else line.strip()
    return joined


def _sentences(text: str, *, korean: bool) -> list[list[str]]:
    """The sentences of a text as word lists, keeping those that read as prose in their language."""
    kept = []
    for sentence in _SENTENCE_END.split(" ".join(_CIRCLED.sub(" ", text).split())):
        if _LAYOUT.search(sentence) or ">>>" in sentence:
            continue
        words = sentence.split()
        letters = _LETTER.findall(sentence)
        if len(words) < 2 or not letters:
            continue
        hangul = len(_HANGUL.findall(sentence)) / len(letters)
        if (korean and hangul >= 0.8) or (not korean and hangul == 0 and len(letters) / len(sentence) > 0.6):
            kept.append(words)
    return kept


@cache
def korean_sentences() -> tuple[tuple[str, ...], ...]:
    """Sentences of the Constitution and the bills konlpy ships (kolaw, kobill)."""
    base = konlpy_corpus_dir()
    texts = [(base / "kolaw" / "constitution.txt").read_text(encoding="utf-8")]
    texts += [_unwrap(path.read_text(encoding="utf-8")) for path in sorted((base / "kobill").glob("*.txt"))]
    return tuple(tuple(words) for text in texts for words in _sentences(text, korean=True))


@cache
def english_sentences() -> tuple[tuple[str, ...], ...]:
    """Sentences of the standard library's module, class and function docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*.py")):
        if set(path.relative_to(root).parts) & _STDLIB_SKIP:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few files are test data or in another encoding
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    # Paragraphs, not lines: a docstring wraps its sentences over lines.
                    for paragraph in doc.split("\n\n"):
                        found.extend(_sentences(paragraph, korean=False))
    return tuple(tuple(words) for words in found)


def _window(rng: random.Random, sentences: tuple[tuple[str, ...], ...], words: int) -> list[str]:
    sentence = sentences[rng.randrange(len(sentences))]
    if len(sentence) <= words:
        return list(sentence)
    start = rng.randrange(len(sentence) - words + 1)
    return list(sentence[start : start + words])


def message_length(rng: random.Random) -> int:
    """Words in a chat message: 1 to 30, short ones most often (mean about 6)."""
    return min(MAX_WORDS, 1 + int(rng.expovariate(1 / MEAN_EXTRA_WORDS)))


def messages(count: int, *, seed: int = 19) -> Iterator[str]:
    """``count`` chat-like messages, the same ones for the same seed."""
    korean, english = korean_sentences(), english_sentences()
    rng = random.Random(seed)
    for _ in range(count):
        words = message_length(rng)
        pick = rng.random()
        if pick < KOREAN_SHARE:
            body = _window(rng, korean, words)
        elif pick < KOREAN_SHARE + ENGLISH_SHARE:
            body = _window(rng, english, words)
        else:
            first = rng.randint(1, max(1, words - 1))
            body = _window(rng, korean, first) + _window(rng, english, max(1, words - first))
            if rng.random() < 0.5:
                body = body[first:] + body[:first]  # English first in half of them
        yield " ".join(body)


if __name__ == "__main__":
    # A look at what the benchmark stores: `python -m bench.corpus [N]`.
    import sys

    print(f"{len(korean_sentences())} Korean and {len(english_sentences())} English sentences")
    for body in messages(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
        print(body)
