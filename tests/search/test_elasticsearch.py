"""The Elasticsearch backend against a real server: matching, versions, deletions, filters, order.

Runs only where SEARCH_ELASTICSEARCH_URL names an Elasticsearch 8 server (docker/docker-compose.yml
has one); each test has an index of its own, deleted after it.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from search.backends.base import Doc, Query
from search.backends.elasticsearch import ElasticsearchBackend, ElasticsearchUnavailable
from search.text import query_terms
from streams.pipeline.worker import TRANSIENT, classify

URL = os.environ.get("SEARCH_ELASTICSEARCH_URL", "")
# Every test but the last needs the server (through the ``backend`` fixture).
needs_server = pytest.mark.skipif(
    not URL, reason="no search server: set SEARCH_ELASTICSEARCH_URL to run the Elasticsearch backend tests"
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def backend():
    index = ElasticsearchBackend(url=URL, index=f"test-search-{uuid.uuid4().hex[:12]}", refresh="wait_for")
    index.ensure()
    yield index
    index.drop()


def doc(message_id: int, body: str, *, room: int = 1, sender: int | None = 7, version: int = 1, minutes: int = 0):
    return Doc(
        message_id=message_id,
        room_id=room,
        sender_id=sender,
        created_at=T0 + timedelta(minutes=minutes or message_id),
        body=body,
        version=version,
    )


def find(backend, q: str, *, rooms=(1,), **fields) -> list[int]:
    return backend.search(Query(terms=query_terms(q), room_ids=list(rooms), **fields))


@needs_server
def test_english_terms_match_in_any_case_every_term_needed(backend):
    backend.upsert([doc(1, "Release on Friday"), doc(2, "the release notes"), doc(3, "friday lunch?")])

    assert find(backend, "RELEASE") == [2, 1]
    assert find(backend, "friday release") == [1]
    assert find(backend, "nothing") == []


@needs_server
def test_korean_is_found_inside_words(backend):
    backend.upsert([doc(1, "안녕하세요 반갑습니다"), doc(2, "회의는 3시에 시작해요"), doc(3, "점심 먹었어요?")])

    assert find(backend, "반갑") == [1]
    assert find(backend, "회의") == [2]
    assert find(backend, "3시") == [2]
    assert find(backend, "회의 반갑") == []


@needs_server
def test_a_part_of_a_word_finds_the_word(backend):
    backend.upsert([doc(1, "Meeting at noon"), doc(2, "we met once"), doc(3, "Ｆｕｌｌｗｉｄｔｈ ＭＥＥＴＩＮＧ")])

    assert find(backend, "meet") == [3, 1]
    assert find(backend, "eetin") == [3, 1]
    # Longer than the n-grams: every trigram must be there, so "met once" does not pass.
    assert find(backend, "meeting") == [3, 1]


@needs_server
def test_one_character_terms_find_single_letter_words_and_syllables(backend):
    backend.upsert([doc(1, "밥 먹자"), doc(2, "I'm here"), doc(3, "a b c"), doc(4, "nothing to see")])

    assert find(backend, "밥") == [1]
    assert find(backend, "m") == [2]
    assert find(backend, "b") == [3]
    assert find(backend, "x") == []


@needs_server
def test_a_term_without_letters_narrows_nothing_and_misses_nothing(backend):
    backend.upsert([doc(1, "really?!"), doc(2, "no question")])

    # The selector's check against the database drops message 2; the index must not drop 1.
    assert 1 in find(backend, "?!")


@needs_server
def test_a_newer_version_replaces_the_document_and_an_older_one_does_not(backend):
    backend.upsert([doc(1, "first words", version=10)])
    backend.upsert([doc(1, "edited words", version=20)])
    assert find(backend, "edited") == [1]
    assert find(backend, "first") == []

    backend.upsert([doc(1, "first words", version=10)])  # a rebuild that read the row before the edit
    assert find(backend, "edited") == [1]
    assert find(backend, "first") == []

    backend.upsert([doc(1, "edited words", version=20)])  # a replay
    assert find(backend, "edited") == [1]
    assert backend.stats()["documents"] == 1


@needs_server
def test_delete_removes_documents_and_absent_ones_are_fine(backend):
    backend.upsert([doc(1, "keep this"), doc(2, "drop this")])
    backend.delete([2, 999])

    assert find(backend, "this") == [1]


@needs_server
def test_delete_room_removes_that_room_only(backend):
    backend.upsert([doc(1, "hello", room=1), doc(2, "hello", room=2)])
    backend.delete_room(2)

    assert find(backend, "hello", rooms=[1, 2]) == [1]


@needs_server
def test_forget_sender_keeps_the_words_without_a_sender_or_drops_them(backend):
    backend.upsert([doc(1, "from seven", sender=7), doc(2, "from eight", sender=8), doc(3, "seven again", sender=7)])

    backend.forget_sender(7, drop=False)
    assert find(backend, "from") == [2, 1]
    assert find(backend, "from", sender_id=7) == []
    # The document of before the erasure, replayed, does not bring the sender back.
    backend.upsert([doc(1, "from seven", sender=7)])
    assert find(backend, "from", sender_id=7) == []

    backend.forget_sender(8, drop=True)
    assert find(backend, "from") == [1]


@needs_server
def test_a_room_not_asked_for_never_hits(backend):
    backend.upsert([doc(1, "secret plan", room=1), doc(2, "secret plan", room=2), doc(3, "secret plan", room=3)])

    assert find(backend, "secret", rooms=[1, 3]) == [3, 1]
    assert find(backend, "secret", rooms=[]) == []


@needs_server
def test_sender_and_time_filters(backend):
    backend.upsert([doc(1, "lunch", sender=7, minutes=10), doc(2, "lunch", sender=8, minutes=20)])
    backend.upsert([doc(3, "lunch", sender=7, minutes=30)])

    assert find(backend, "lunch", sender_id=7) == [3, 1]
    assert find(backend, "lunch", since=T0 + timedelta(minutes=20)) == [3, 2]
    assert find(backend, "lunch", until=T0 + timedelta(minutes=20)) == [1]


@needs_server
def test_recent_order_pages_by_before_id_with_one_extra_hit(backend):
    backend.upsert([doc(pk, f"standup {pk}") for pk in range(1, 8)])

    first = find(backend, "standup", limit=3)
    assert first == [7, 6, 5, 4]  # limit + 1: the extra one says there is more
    second = find(backend, "standup", limit=3, before_id=5)
    assert second == [4, 3, 2, 1]
    assert find(backend, "standup", limit=3, before_id=2) == [1]


@needs_server
def test_relevance_order_puts_the_whole_word_before_newer_partial_matches(backend):
    backend.upsert([
        doc(1, "the meetings notes"),
        doc(2, "the meeting notes"),
        doc(3, "meet and greet"),
        doc(4, "the meetings list"),
    ])  # fmt: skip

    ranked = find(backend, "meeting", order="relevance", limit=10)
    assert sorted(ranked) == [1, 2, 4]
    assert ranked[0] == 2  # older than 4, but "meeting" is a word of its own there
    assert find(backend, "meeting", order="relevance", limit=1, offset=1) == ranked[1:3]


@needs_server
def test_ids_after_sweeps_in_ascending_order(backend):
    backend.upsert([doc(pk, "x") for pk in (5, 1, 9, 3)])

    assert backend.ids_after(0, 2) == [1, 3]
    assert backend.ids_after(3, 10) == [5, 9]
    assert backend.ids_after(9, 10) == []


@needs_server
def test_clear_empties_the_index_and_the_same_versions_can_be_written_again(backend):
    backend.upsert([doc(1, "before the clear", version=5)])
    backend.clear()
    assert find(backend, "clear") == []
    assert backend.stats()["documents"] == 0

    backend.upsert([doc(1, "before the clear", version=5)])  # the rebuild after --from-scratch
    assert find(backend, "clear") == [1]
    stats = backend.stats()
    assert stats["backend"] == "elasticsearch" and stats["documents"] == 1 and stats["size_bytes"] > 0


@needs_server
def test_a_write_to_a_missing_index_creates_it_with_its_mappings(backend):
    backend.drop()
    backend.upsert([doc(1, "회의는 내일")])

    assert find(backend, "회의") == [1]


def test_an_unreachable_server_is_unavailable_and_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    dead = ElasticsearchBackend(url=f"http://127.0.0.1:{port}", index="chat-messages")

    with pytest.raises(ElasticsearchUnavailable) as caught:
        dead.upsert([doc(1, "hello")])
    assert f"Elasticsearch at http://127.0.0.1:{port} is unreachable" in str(caught.value)
    assert caught.value.code == "unavailable" and caught.value.http_status == 503
    assert classify(caught.value) == TRANSIENT
