"""Per-user limits, end to end: they hold across all of a user's sockets, and refuse without a trace.

A web process of its own runs with the limits on (the session's `server` runs without them, for
load-style tests) and a socket cap of 200.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from chat_messages.models import Message
from tests.conftest import free_port
from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CAP = 200
WAVE = 20  # sockets opened at once


@pytest.fixture(scope="module")
def limited(server):
    """A second web process on the same stack, rate limits on, at most CAP sockets per user."""
    port = free_port()
    name = "web:limited"
    server.start(
        name, port=port, RATE_LIMITS="on", CHAT_MAX_SOCKETS_PER_USER=str(CAP), CHAT_READ_RATE="1", CHAT_READ_BURST="5"
    )
    log = server.log_dir / "web-limited.log"
    yield f"ws://127.0.0.1:{port}/ws/chat/", log
    server.stop(name)


async def _until_answered(ws, req: str) -> None:
    while json.loads(await asyncio.wait_for(ws.recv(), 10)).get("req") != req:
        pass


async def _connect_within(url: str, user, *, seconds: float) -> ChatClient:
    """A new socket of ``user``, retried while the server has not yet freed a closed one's slot."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        client = await ChatClient.connect(url, user)
        await client.send(type="sync", rooms={}, req="up")
        try:
            await client.wait_for(lambda c: c.of_type("sync.done"), timeout=2)
            return client
        except AssertionError:
            await client.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _close_code(ws) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code


async def test_two_hundred_sockets_of_one_user_cannot_multiply_typing_and_the_next_one_is_refused(
    server, limited, make_user, make_room
):
    url, log = limited
    typist, reader = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=typist, members=[reader])
    watcher = await ChatClient.connect(url, reader)
    key = await in_thread(token_for, typist)
    headers = {"Authorization": f"Token {key}"}
    loop = asyncio.get_running_loop()
    # In waves: two hundred handshakes at once on a busy test machine can outlast daphne's
    # handshake timeout (a connection storm is not what this test is about).
    sockets = []
    for _ in range(0, CAP, WAVE):
        sockets += await asyncio.gather(*(websockets.connect(url, additional_headers=headers) for _ in range(WAVE)))
    try:
        # One more than the cap, from any process, is refused with a clear code.
        extra = await websockets.connect(url, additional_headers=headers)
        assert await _close_code(extra) == 4429

        started = loop.time()
        await asyncio.gather(*(ws.send(json.dumps({"type": "typing", "room": room.pk})) for ws in sockets))
        # Everything the 200 frames cause has arrived once a frame sent after them is answered.
        for ws in sockets[-3:]:
            await ws.send(json.dumps({"type": "sync", "rooms": {}, "req": "after"}))
        await watcher.wait_for(lambda c: c.of_type("typing"))
        await asyncio.gather(*(_until_answered(ws, "after") for ws in sockets[-3:]))
        await watcher.send(type="sync", rooms={}, req="marker")
        await watcher.wait_for(lambda c: any(f.get("req") == "marker" for f in c.of_type("sync.done")))
        elapsed = loop.time() - started
        typing = [f for f in watcher.of_type("typing") if f["room"] == room.pk]
        # One per second of sending at most (CHAT_TYPING_INTERVAL_S), not one per socket.
        assert 1 <= len(typing) <= 1 + int(elapsed), f"{len(typing)} typing frames from one user in {elapsed:.1f} s"

        # Closing sockets frees their slots (as soon as the server saw them close).
        await asyncio.gather(*(ws.close() for ws in sockets[:5]))
        again = await _connect_within(url, typist, seconds=10)
        msg = await again.send_message(room.pk, "still welcome")
        await watcher.wait_for(lambda c: any(m["client_msg_id"] == msg for m in c.new_messages(room.pk)))
        await again.close()
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await watcher.close()
    assert "Traceback" not in log.read_text(errors="replace")
    assert "MaxConnectionsError" not in log.read_text(errors="replace")


async def test_room_entries_and_syncs_are_limited_per_user_across_sockets(server, limited, make_user, make_room):
    url, log = limited
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    clients = [await ChatClient.connect(url, alice) for _ in range(3)]
    started = asyncio.get_running_loop().time()
    try:
        for client in clients:
            for i in range(10):
                await client.send(type="room.enter", room=room.pk, req=i)
        await asyncio.gather(
            *(c.wait_for(lambda c: len(c.of_type("room.entered")) + len(c.of_type("error")) == 10) for c in clients)
        )
        elapsed = asyncio.get_running_loop().time() - started
        entered = sum(len(c.of_type("room.entered")) for c in clients)
        refused = [e for c in clients for e in c.of_type("error")]
        # The burst of 5 is the user's, not each socket's (plus the 1 a second that refills).
        assert 5 <= entered <= 5 + 1 + int(elapsed), (entered, elapsed)
        assert refused and {e["code"] for e in refused} == {"rate_limited"}
        assert "retry in" in refused[0]["detail"]
        # Sending is a bucket of its own: still allowed.
        msg = await clients[0].send_message(room.pk, "hello")
        await clients[0].wait_for(lambda c: any(m["client_msg_id"] == msg for m in c.new_messages(room.pk)))
    finally:
        for client in clients:
            await client.close()
    assert "Traceback" not in log.read_text(errors="replace")


async def test_deactivating_a_user_closes_their_socket_and_refuses_what_they_had_in_flight(
    server, make_user, make_room
):
    from accounts.services import account_deactivate

    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    key = await in_thread(token_for, alice)
    ws = await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {key}"})
    await in_thread(account_deactivate, user=alice)
    assert await _close_code(ws) == 4401
    # The old token is gone, and a new socket with it is refused.
    again = await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {key}"})
    assert await _close_code(again) == 4401
    assert await in_thread(Message.objects.filter(room=room).count) == 0


async def test_a_direct_room_whose_other_person_is_gone_is_read_only(server, make_user):
    import urllib.error
    import urllib.request
    import uuid

    from accounts.services import account_delete
    from rooms.services import room_open_direct

    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(lambda: room_open_direct(user=alice, other=bob)[0])
    client = await ChatClient.connect(server.ws, alice)
    first = await client.send_message(room.pk, "are you there?")
    await client.wait_for(lambda c: any(m["client_msg_id"] == first for m in c.new_messages(room.pk)))
    await in_thread(account_delete, user=bob, erase_messages=False)
    key = await in_thread(token_for, alice)

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{server.http}{path}", data=data, method=method,
            headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, detail = await asyncio.to_thread(call, "GET", f"/api/v1/rooms/{room.pk}/")
    assert status == 200 and detail["read_only"] is True
    status, answer = await asyncio.to_thread(
        call, "POST", f"/api/v1/rooms/{room.pk}/messages/", {"client_msg_id": str(uuid.uuid4()), "body": "hello?"}
    )
    assert status == 403 and answer["error"]["code"] == "forbidden"
    # Over the socket the refusal comes from storage, naming the message.
    late = await client.send_message(room.pk, "hello??")
    await client.wait_for(lambda c: any(e.get("client_msg_id") == late for e in c.of_type("error")))
    error = next(e for e in client.of_type("error") if e.get("client_msg_id") == late)
    assert error["code"] == "forbidden" and "read-only" in error["detail"]
    assert await in_thread(Message.objects.filter(room=room).count) == 1
    await client.close()
