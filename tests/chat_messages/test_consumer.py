"""The socket protocol in process: Channels' WebsocketCommunicator against the real ASGI application.

The auth middleware, ChatConsumer, the process's real-time hub and its Redis subscription, and
PostgreSQL are the real ones; only the network and daphne are left out (the *_e2e modules drive
those). Fast enough to cover every branch a client can reach; a send goes through Kafka, and the
persist worker's consume() is called on the records read back, as its own tests do.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import threading
import uuid
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from chat_messages.models import Message
from chat_messages.services import messages_store, send_envelope
from chat_messages.workers import PersistWorker
from streams.pipeline import kafka
from streams.realtime.hub import get_hub
from streams.realtime.protocol import CLOSE_GOING_AWAY, CLOSE_TOO_MANY_SOCKETS, CLOSE_UNAUTHENTICATED
from tests.support import KafkaTap, in_thread, token_for

# The consumer reads the database from worker threads: they must see the test's committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10.0  # generous on a busy machine; every wait returns as soon as its frame arrives


@pytest.fixture(scope="module", autouse=True)
def own_topics():
    """Kafka topics of this module's own.

    What these sockets produce is read back and applied by the tests themselves; a persist
    consumer that another test of the same worker started (the session's server) would apply it
    too, at any moment, and its transaction could meet the test's teardown (TRUNCATE) in a deadlock.
    """
    from django.test import override_settings

    with override_settings(KAFKA_TOPIC_PREFIX=f"consumer-{uuid.uuid4().hex[:8]}-"):
        kafka.ensure_topics()
        yield


async def close_pool_connections() -> None:
    """Close the database connection of every thread in the event loop's default pool.

    The consumer reads the database in that pool (database_sync_to_async, thread_sensitive=False)
    and its threads keep their connection open after the call; one left open would keep the test
    database from being dropped at the end of the session.
    """
    workers = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default size
    barrier = threading.Barrier(workers)

    def close() -> None:
        try:
            barrier.wait(timeout=2)  # each call holds its thread until all are placed: one per thread
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    await asyncio.gather(*(asyncio.to_thread(close) for _ in range(workers)))


@pytest.fixture
async def sockets():
    """``await sockets.open(user)``: a connected socket; every one is closed after the test.

    Afterwards the process's hub must hold no subscription of them: the hub and its Redis
    connection live for the whole session and are shared by every in-process socket.
    """
    opened = Sockets()
    yield opened
    await opened.close_all()
    await close_pool_connections()
    assert get_hub().groups == {}, "a socket was left subscribed in the hub"


@functools.cache
def asgi_application():
    """chatproject.asgi.application: the auth middleware and ChatConsumer as daphne serves them.

    Importing it tunes the collector for a server process (streams.runtime.gc_tune); the test
    run keeps its own settings.
    """
    threshold = gc.get_threshold()
    from chatproject.asgi import application

    gc.unfreeze()
    gc.set_threshold(*threshold)
    return application


class Socket:
    """One client socket: frames sent and received as JSON."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.frames: list[dict] = []

    async def send(self, **frame) -> None:
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self) -> dict:
        """The next frame, leaving out presence.updated: those come whenever a member's socket opens
        or closes, between any two frames (tests/chat_messages/test_presence_e2e.py has their own)."""
        while True:
            frame = await self.communicator.receive_json_from(timeout=TIMEOUT)
            if frame["type"] != "presence.updated":
                break
        self.frames.append(frame)
        return frame

    async def until(self, kind: str) -> list[dict]:
        """The frames received up to and including the first of type ``kind``."""
        got = []
        while True:
            got.append(await self.receive())
            if got[-1]["type"] == kind:
                return got

    async def closed_with(self) -> int:
        """The close code the server closed this socket with (the next output must be the close)."""
        output = await self.communicator.receive_output(timeout=TIMEOUT)
        while output["type"] == "websocket.send" and '"type":"presence.updated"' in (output.get("text") or ""):
            output = await self.communicator.receive_output(timeout=TIMEOUT)
        assert output["type"] == "websocket.close", output
        return output["code"]


class Sockets:
    def __init__(self) -> None:
        self.communicators: list[WebsocketCommunicator] = []

    async def communicator(self, user=None, *, token: str | None = None) -> WebsocketCommunicator:
        headers = []
        if user is not None:
            token = await in_thread(token_for, user)
        if token is not None:
            headers.append((b"authorization", f"Token {token}".encode()))
        communicator = WebsocketCommunicator(asgi_application(), "/ws/chat/", headers=headers)
        self.communicators.append(communicator)
        return communicator

    async def open(self, user) -> Socket:
        communicator = await self.communicator(user)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        return Socket(communicator)

    async def refused(self, user=None, *, token: str | None = None) -> int:
        """The close code of a socket the server accepts only to close at once."""
        communicator = await self.communicator(user, token=token)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected, "the server accepts first: a close code needs an accepted socket"
        return await Socket(communicator).closed_with()

    async def close_all(self) -> None:
        for communicator in self.communicators:
            await communicator.disconnect(timeout=TIMEOUT)
        self.communicators = []


def store(room, sender, *bodies: str) -> list[int]:
    """Store messages as the persist worker does (fanned out after commit); returns their seqs."""
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body) for body in bodies
    ]
    return [m.seq for m in messages_store(sends=sends).stored]


# -- the handshake --------------------------------------------------------------------------------
async def test_a_socket_without_credentials_or_with_an_unknown_token_is_closed_with_4401(sockets):
    assert await sockets.refused() == CLOSE_UNAUTHENTICATED
    assert await sockets.refused(token="not-a-token") == CLOSE_UNAUTHENTICATED


async def test_a_token_authenticates_the_socket_for_that_users_rooms(sockets, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice)
    socket = await sockets.open(alice)
    await socket.send(type="room.enter", room=room.pk, req=1)
    assert (await socket.receive())["type"] == "room.entered"

    stranger = await sockets.open(bob)
    await stranger.send(type="room.enter", room=room.pk, req=2)
    assert await stranger.receive() == {
        "type": "error", "req": 2, "code": "not_member", "detail": "You are not a member of this room.", "room": room.pk,
    }  # fmt: skip


# -- room.enter -----------------------------------------------------------------------------------
async def test_entering_a_room_answers_the_read_position_counts_and_the_page_at_the_first_unread(
    sockets, make_user, make_room
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    await in_thread(store, room, alice, "one", "two", "three")
    socket = await sockets.open(bob)
    await socket.send(type="room.enter", room=room.pk, req="enter")

    entered = await socket.receive()
    assert {k: v for k, v in entered.items() if k != "messages"} == {
        "type": "room.entered", "req": "enter", "room": room.pk, "last_read_seq": 0, "last_seq": 3, "unread": 3,
    }  # fmt: skip
    assert [(m["seq"], m["body"], m["sender"]["username"]) for m in entered["messages"]] == [
        (1, "one", alice.username), (2, "two", alice.username), (3, "three", alice.username),
    ]  # fmt: skip
    assert [m["unread_count"] for m in entered["messages"]] == [1, 1, 1]  # bob has read none of them


# -- frames the server refuses, on a socket that stays open ---------------------------------------
@pytest.mark.parametrize(
    ("frame", "req", "detail_says"),
    [
        ("not json", None, "not valid JSON"),
        ('["a list"]', None, "JSON object"),
        ('{"type": "room.fly", "req": "r1"}', "r1", "Unknown frame type"),
        ('{"type": "room.enter", "room": "7", "req": "r2"}', "r2", "`room` must be a positive integer id"),
        ('{"type": "typing", "room": "١", "req": "r3"}', "r3", "`room` must be a positive integer id"),
        ('{"type": "room.read", "room": 1, "seq": "2", "req": "r4"}', "r4", None),
        ('{"type": "sync", "rooms": {"1": "0"}, "req": "r5"}', "r5", "`rooms` must map room ids"),
        ('{"type": "room.enter", "room": 1, "req": "' + "x" * 201 + '"}', None, "`req` must be a string"),
        ('{"type": "room.enter", "room": 1, "req": {"nested": 1}}', None, "`req` must be a string"),
    ],
    ids=[
        "not-json", "not-an-object", "unknown-type", "room-id-as-string", "room-id-in-other-digits",
        "seq-as-string", "sync-seq-as-string", "req-too-long", "req-nested",
    ],
)  # fmt: skip
async def test_an_invalid_frame_gets_an_invalid_error_and_the_socket_stays_open(
    sockets, make_user, make_room, frame, req, detail_says
):
    alice = await in_thread(make_user)
    room = await in_thread(make_room, owner=alice)
    socket = await sockets.open(alice)
    await socket.send_text(frame.replace('"room": 1', f'"room": {room.pk}').replace('{"1":', f'{{"{room.pk}":'))

    error = await socket.receive()
    assert (error["type"], error["code"], error["req"]) == ("error", "invalid", req)
    if detail_says:
        assert detail_says in error["detail"]
    # The socket still answers.
    await socket.send(type="room.enter", room=room.pk, req="still-there")
    assert (await socket.receive())["req"] == "still-there"


async def test_a_message_send_with_ids_as_strings_is_refused_with_its_client_msg_id(sockets, make_user, make_room):
    alice = await in_thread(make_user)
    room = await in_thread(make_room, owner=alice)
    socket = await sockets.open(alice)
    msg_id = str(uuid.uuid4())
    await socket.send(type="message.send", room=str(room.pk), client_msg_id=msg_id, body="hi", req="s")

    error = await socket.receive()
    assert (error["type"], error["code"], error["req"], error["client_msg_id"]) == ("error", "invalid", "s", msg_id)
    assert "room" not in error  # only a field of its right shape is echoed


# -- membership -----------------------------------------------------------------------------------
async def test_acting_in_a_room_one_is_not_a_member_of_is_refused_with_not_member(sockets, make_user, make_room):
    alice, outsider = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice)
    socket = await sockets.open(outsider)
    msg_id = str(uuid.uuid4())
    await socket.send(type="message.send", room=room.pk, client_msg_id=msg_id, body="let me in", req="send")
    await socket.send(type="typing", room=room.pk, req="typing")
    await socket.send(type="room.read", room=room.pk, seq=0, req="read")
    await socket.send(type="sync", rooms={str(room.pk): 0}, req="sync")

    errors = [await socket.receive() for _ in range(4)]
    assert [(e["type"], e["code"], e["req"], e.get("room")) for e in errors] == [
        ("error", "not_member", req, room.pk) for req in ("send", "typing", "read", "sync")
    ]
    assert errors[0]["client_msg_id"] == msg_id
    assert (await socket.receive()) == {"type": "sync.done", "req": "sync"}


# -- typing ---------------------------------------------------------------------------------------
async def test_typing_reaches_the_other_members_sockets_through_the_hub(sockets, make_user, make_room):
    alice, bob, carol = await in_thread(lambda: [make_user() for _ in range(3)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    typist, reader, outsider = [await sockets.open(u) for u in (alice, bob, carol)]
    await typist.send(type="typing", room=room.pk)
    await typist.send(type="typing", room=room.pk)  # within the second: not fanned out again

    typing = {"type": "typing", "room": room.pk, "user": {"id": alice.pk, "username": alice.username}}
    assert await reader.receive() == typing
    # A marker published to the room after both typings: anything else would have come before it.
    await in_thread(store, room, alice, "marker")
    assert [f["type"] for f in await reader.until("message.new")] == ["message.new"]
    # The outsider heard nothing of the room: its own sync answer is the next thing it gets.
    await outsider.send(type="sync", rooms={}, req="m")
    assert await outsider.receive() == {"type": "sync.done", "req": "m"}


# -- sync -----------------------------------------------------------------------------------------
async def test_sync_answers_the_missed_messages_in_order_then_sync_done(sockets, make_user, make_room, settings):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    busy = await in_thread(make_room, owner=alice, members=[bob], name="busy")
    await in_thread(store, room, alice, *(f"m{i}" for i in range(1, 6)))
    await in_thread(store, busy, alice, *(f"b{i}" for i in range(1, 6)))
    settings.CHAT_SYNC_MAX = 3
    socket = await sockets.open(bob)

    await socket.send(type="sync", rooms={str(room.pk): 3, str(busy.pk): 0}, req="s1")
    frames = await socket.until("sync.done")
    assert [(f["message"]["seq"], f["message"]["body"]) for f in frames if f["type"] == "message.new"] == [
        (4, "m4"), (5, "m5"),
    ]  # fmt: skip
    # More than CHAT_SYNC_MAX missing: a gap, to page over REST.
    assert [f for f in frames if f["type"] == "sync.gap"] == [
        {"type": "sync.gap", "req": "s1", "room": busy.pk, "from_seq": 1}
    ]
    assert frames[-1] == {"type": "sync.done", "req": "s1"}

    await socket.send(type="sync", rooms={str(room.pk): 5}, req="s2")  # up to date: only done
    assert await socket.receive() == {"type": "sync.done", "req": "s2"}


# -- message.send ---------------------------------------------------------------------------------
@pytest.fixture
async def tap(settings):
    """Topics and consumer groups of this test's own: the session's persist process (when the
    `server` fixture runs) must not store and announce the message too."""
    settings.KAFKA_TOPIC_PREFIX = f"inproc-{uuid.uuid4().hex[:8]}-"
    await asyncio.to_thread(kafka.ensure_topics)
    tap = await asyncio.to_thread(KafkaTap, kafka.MESSAGES)
    yield tap
    await asyncio.to_thread(tap.close)


@pytest.mark.kafka
async def test_a_send_is_accepted_once_the_broker_has_it_and_the_stored_message_reaches_every_member(
    sockets, tap, make_user, make_room
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    sender, reader = await sockets.open(alice), await sockets.open(bob)
    msg_id = str(uuid.uuid4())
    await sender.send(type="message.send", room=room.pk, client_msg_id=msg_id, body="hello", req="s")

    assert await sender.receive() == {"type": "message.accepted", "req": "s", "client_msg_id": msg_id, "room": room.pk}
    records = await asyncio.to_thread(tap.records, 1)
    assert [(r.value["kind"], r.value["client_msg_id"], r.key) for r in records] == [
        ("message.send", msg_id, str(room.pk).encode())
    ]
    # What the persist process would do with the batch.
    await in_thread(PersistWorker().consume, records)
    for socket in (sender, reader):
        new = (await socket.until("message.new"))[-1]["message"]
        assert (new["room"], new["seq"], new["client_msg_id"], new["body"]) == (room.pk, 1, msg_id, "hello")
        assert new["sender"] == {"id": alice.pk, "username": alice.username}

    # Once: a marker published to the room after it is the next frame either socket gets.
    await in_thread(store, room, bob, "marker")
    for socket in (sender, reader):
        assert (await socket.receive())["message"]["body"] == "marker"


# -- edits and deletions --------------------------------------------------------------------------
async def test_a_sender_edits_and_deletes_their_message_over_the_socket_and_every_member_sees_it(
    sockets, tap, make_user, make_room
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=bob, members=[alice])
    (seq,) = await in_thread(store, room, alice, "helo")
    sender, reader = await sockets.open(alice), await sockets.open(bob)

    await sender.send(type="message.edit", room=room.pk, seq=seq, body="hello", req="e")
    assert (await sender.until("message.edit.accepted"))[-1] == {
        "type": "message.edit.accepted", "req": "e", "room": room.pk, "seq": seq,
    }  # fmt: skip
    await sender.send(type="message.delete", room=room.pk, seq=seq, req="d")
    assert (await sender.until("message.delete.accepted"))[-1]["req"] == "d"

    # Through Kafka in the room's order, applied by the persist worker as a send is.
    records = await asyncio.to_thread(tap.records, 2)
    assert [r.value["kind"] for r in records] == ["message.edit", "message.delete"]
    await in_thread(PersistWorker().consume, records)
    for socket in (sender, reader):
        updated = (await socket.until("message.updated"))[-1]
        assert (updated["room"], updated["seq"], updated["body"]) == (room.pk, seq, "hello")
        assert (await socket.until("message.deleted"))[-1] == {"type": "message.deleted", "room": room.pk, "seq": seq}


async def test_edits_and_deletions_others_may_not_make_are_refused_with_the_reason(
    sockets, make_user, make_room, settings
):
    alice, bob, carol = await in_thread(lambda: [make_user() for _ in range(3)])
    room = await in_thread(make_room, owner=carol, members=[alice, bob])
    (seq,) = await in_thread(store, room, alice, "mine")
    bob_socket = await sockets.open(bob)

    async def answer(**frame) -> dict:
        await bob_socket.send(req="x", **frame)
        return (await bob_socket.until("error"))[-1]

    edit = await answer(type="message.edit", room=room.pk, seq=seq, body="not yours")
    assert (edit["code"], edit["detail"], edit["seq"]) == ("forbidden", "Only its sender can edit a message.", seq)
    delete = await answer(type="message.delete", room=room.pk, seq=seq)
    assert delete["code"] == "forbidden" and "owner or admins" in delete["detail"]
    assert (await answer(type="message.edit", room=room.pk, seq=99, body="x"))["code"] == "not_found"
    assert (await answer(type="message.edit", room=room.pk, seq=seq, body=""))["code"] == "invalid"
    assert (await answer(type="message.delete", room=room.pk, seq="1"))["code"] == "invalid"
    other = await in_thread(make_room, owner=carol)
    assert (await answer(type="message.delete", room=other.pk, seq=1))["code"] == "not_member"

    # Past the edit window the sender too is refused; deleting stays allowed.
    settings.CHAT_EDIT_WINDOW_S = 60
    await in_thread(
        lambda: Message.objects.filter(room=room, seq=seq).update(created_at=timezone.now() - timedelta(minutes=2))
    )
    alice_socket = await sockets.open(alice)
    await alice_socket.send(type="message.edit", room=room.pk, seq=seq, body="too late", req="late")
    late = (await alice_socket.until("error"))[-1]
    assert (late["code"], late["detail"]) == ("forbidden", "A message can be edited for 1 minute after it is sent.")
    await alice_socket.send(type="message.delete", room=room.pk, seq=seq, req="del")
    assert (await alice_socket.until("message.delete.accepted"))[-1]["seq"] == seq


async def test_the_rooms_owner_and_admins_delete_anyones_message(sockets, tap, make_user, make_room):
    alice, owner = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=owner, members=[alice])
    (seq,) = await in_thread(store, room, alice, "spam")
    socket = await sockets.open(owner)

    await socket.send(type="message.delete", room=room.pk, seq=seq, req="mod")
    assert (await socket.until("message.delete.accepted"))[-1]["seq"] == seq
    (record,) = await asyncio.to_thread(tap.records, 1)
    assert (record.value["sender"], record.value["moderator"]) == (alice.pk, owner.pk)
    await in_thread(PersistWorker().consume, [record])
    assert (await socket.until("message.deleted"))[-1]["seq"] == seq
    deleted = await in_thread(lambda: Message.objects.get(room=room, seq=seq))
    assert (deleted.body, deleted.deleted_at is not None) == ("", True)


async def test_a_reaction_over_the_socket_reaches_every_member_and_a_bad_one_says_why(sockets, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    (seq,) = await in_thread(store, room, alice, "react to me")
    author, reactor = await sockets.open(alice), await sockets.open(bob)

    await reactor.send(type="reaction.add", room=room.pk, seq=seq, emoji="🎉", req="r")
    for socket in (author, reactor):
        added = (await socket.until("reaction.added"))[-1]
        assert (added["room"], added["seq"], added["emoji"], added["user"]["id"]) == (room.pk, seq, "🎉", bob.pk)
    await reactor.send(type="reaction.remove", room=room.pk, seq=seq, emoji="🎉")
    assert (await author.until("reaction.removed"))[-1]["user"]["id"] == bob.pk

    await reactor.send(type="reaction.add", room=room.pk, seq=seq, emoji="🦄", req="bad")
    refused = (await reactor.until("error"))[-1]
    assert (refused["req"], refused["code"], refused["room"], refused["seq"]) == ("bad", "invalid", room.pk, seq)


# -- limits and going away ------------------------------------------------------------------------
async def test_a_user_at_the_socket_cap_gets_4429_until_one_of_theirs_closes(sockets, make_user, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    first, _second = await sockets.open(alice), await sockets.open(alice)

    assert await sockets.refused(alice) == CLOSE_TOO_MANY_SOCKETS
    await sockets.open(bob)  # the cap is per user

    await first.communicator.disconnect(timeout=TIMEOUT)
    await sockets.open(alice)  # the closed socket's slot is free again


async def test_a_stopping_server_closes_its_sockets_with_4503_and_refuses_new_ones(sockets, make_user):
    alice = await in_thread(make_user)
    socket = await sockets.open(alice)
    hub = get_hub()
    try:
        going = asyncio.ensure_future(hub.going_away(wait_s=TIMEOUT))
        assert await socket.closed_with() == CLOSE_GOING_AWAY
        await socket.communicator.disconnect(timeout=TIMEOUT)  # the client acknowledges the close
        assert await going == 1  # and the server stopped waiting for it then

        assert await sockets.refused(alice) == CLOSE_GOING_AWAY
    finally:
        hub.stopping = False  # the hub is the process's, shared by the session's other tests
