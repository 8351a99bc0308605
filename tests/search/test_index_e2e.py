"""End to end: REST sends -> Kafka -> chat-persist -> chat-index -> GET /api/v1/search/, over HTTP."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.support import in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


class Client(requests.Session):
    """A REST client of one server as one user."""

    def __init__(self, server, user) -> None:
        super().__init__()
        self.base = server.http
        self.headers["Authorization"] = f"Token {token_for(user)}"

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 10)
        return super().request(method, self.base + url, *args, **kwargs)


def client(server, user) -> Client:
    return Client(server, user)


def send(http: Client, room_id: int, body: str) -> None:
    response = http.post(f"/api/v1/rooms/{room_id}/messages/", json={"client_msg_id": str(uuid.uuid4()), "body": body})
    assert response.status_code == 202, response.text


def search_until(http: Client, q: str, expected: list[str], timeout: float = 30.0) -> list[str]:
    """Search until the answer is ``expected`` (the index follows persist asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.get("/api/v1/search/", params={"q": q})
        assert response.status_code == 200, response.text
        got = [hit["body"] for hit in response.json()["hits"]]
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_sends_edits_and_deletions_reach_search(own_server, make_user, make_room):
    own_server.start("index")
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    with client(own_server, alice) as http, client(own_server, bob) as other:
        send(http, room.pk, "회의는 내일 3시")
        send(http, room.pk, "lunch at noon")
        assert search_until(other, "회의", ["회의는 내일 3시"]) == ["회의는 내일 3시"]

        assert http.patch(f"/api/v1/rooms/{room.pk}/messages/1/", json={"body": "회의는 모레 4시"}).status_code == 202
        assert search_until(other, "모레", ["회의는 모레 4시"]) == ["회의는 모레 4시"]
        assert search_until(other, "내일", []) == []
        assert http.delete(f"/api/v1/rooms/{room.pk}/messages/2/").status_code == 202
        assert search_until(other, "lunch", []) == []


def test_the_index_waits_for_persist_instead_of_missing_what_it_has_not_stored(own_server, make_user, make_room):
    """chat-index reads a record only once chat-persist committed it: a send the index saw while
    persist was down is indexed once persist stores it, not skipped as "not in the database"."""
    own_server.start("index")
    alice = make_user()
    room = make_room(owner=alice)
    with client(own_server, alice) as http:
        send(http, room.pk, "warm up")
        assert search_until(http, "warm", ["warm up"]) == ["warm up"]
        own_server.stop("persist")
        send(http, room.pk, "stored later")
        # Time for the index consumer to fetch the record (it is on the broker) and, were it not
        # waiting for persist, to look for its row, find none and move past it.
        time.sleep(3)
        assert search_until(http, "later", [], timeout=0) == []
        own_server.start("persist")
        assert search_until(http, "later", ["stored later"]) == ["stored later"]


async def test_search_over_a_live_room_needs_no_wait_for_other_rooms(indexing, make_user, make_room):
    """The session's server with chat-index: a hit in one room, no hit from a room I am not in."""
    alice, bob = await in_thread(lambda: [make_user(), make_user()])
    mine = await in_thread(make_room, owner=alice)
    theirs = await in_thread(make_room, owner=bob)
    marker = uuid.uuid4().hex[:12]

    def run() -> list[str]:
        with client(indexing, alice) as http, client(indexing, bob) as other:
            send(other, theirs.pk, f"{marker} theirs")
            send(http, mine.pk, f"{marker} mine")
            return search_until(http, marker, [f"{marker} mine"])

    assert await in_thread(run) == [f"{marker} mine"]
