"""End to end over the raw endpoint /stomp/chat/websocket: a STOMP client, daphne, Kafka, persist."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets

from chat_messages.models import Message
from stomp.frames import Frame, encode
from tests.conftest import free_port
from tests.stomp.client import StompClient
from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def stomp_url(server, port: int | None = None) -> str:
    return f"ws://127.0.0.1:{port or server.port}/stomp/chat/websocket"


def stored(room) -> list[tuple[str, str]]:
    return [(m.sender.username, m.body) for m in Message.objects.filter(room=room, kind="text").order_by("seq")]


async def test_subscribe_send_receipt_and_the_seeds_message_shape(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    client = await StompClient.connect(stomp_url(server), alice)
    connected = client.of("CONNECTED")[0]
    assert connected.headers["version"] == "1.2"
    assert connected.headers["user-name"] == alice.username
    destination = f"/sub/chat/room/{room.pk}"
    await client.subscribe(destination, "sub-0", receipt="r-sub")
    await client.wait_for(lambda c: any(f.headers.get("receipt-id") == "r-sub" for f in c.of("RECEIPT")))
    await client.send_json("/pub/chat/message", {"roomId": str(room.pk), "writer": "whoever", "message": "hello"},
                           receipt="r-1")  # fmt: skip
    await client.wait_for(lambda c: c.messages(destination))
    await client.wait_for(lambda c: any(f.headers.get("receipt-id") == "r-1" for f in c.of("RECEIPT")))

    message = client.of("MESSAGE")[0]
    assert message.headers["subscription"] == "sub-0"
    assert message.headers["content-type"] == "application/json"
    body = json.loads(message.body)
    # The writer is the authenticated sender, whatever the frame claimed.
    assert {k: body[k] for k in ("roomId", "writer", "writerId", "message", "seq")} == {
        "roomId": str(room.pk), "writer": alice.username, "writerId": alice.pk, "message": "hello", "seq": 1,
    }  # fmt: skip
    assert body["createAt"]
    assert await in_thread(stored, room) == [(alice.username, "hello")]
    await client.close()


async def test_a_non_member_is_refused_with_error_and_the_connection_closes(server, make_user, make_room):
    alice, outsider = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice)
    for frame in (
        ("SUBSCRIBE", {"id": "0", "destination": f"/sub/chat/room/{room.pk}"}, b""),
        ("SEND", {"destination": "/pub/chat/message"}, json.dumps({"roomId": room.pk, "message": "let me in"})),
        ("SUBSCRIBE", {"id": "0", "destination": f"/sub/user/{alice.pk}"}, b""),
    ):
        client = await StompClient.connect(stomp_url(server), outsider)
        await client.send_frame(*frame)
        await asyncio.wait_for(client.closed.wait(), 10)
        error = client.of("ERROR")[0]
        assert error.headers["code"] in ("not_member", "forbidden")
    assert await in_thread(stored, room) == []


async def test_bad_frames_unknown_destinations_and_no_credentials_get_error_then_close(server, make_user):
    alice = await in_thread(make_user)
    cases = [
        b"SEND\nno-colon-here\n\nx\x00",
        encode(Frame("SEND", {"destination": "/pub/nowhere"}, b"{}")),
        encode(Frame("SEND", {"destination": "/pub/chat/message"}, b"not json")),
        encode(Frame("FLY", {}, b"")),
    ]
    for wire in cases:
        client = await StompClient.connect(stomp_url(server), alice)
        await client.ws.send(wire)
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.of("ERROR"), wire
    # No token, no cookie: CONNECT is refused.
    anonymous = await StompClient.open(stomp_url(server))
    await anonymous.send_frame("CONNECT", {"accept-version": "1.2"})
    await asyncio.wait_for(anonymous.closed.wait(), 10)
    assert anonymous.of("ERROR")[0].headers["code"] == "unauthenticated"
    # A version the server does not speak.
    client = await StompClient.open(stomp_url(server), alice)
    await client.send_frame("CONNECT", {"accept-version": "2.0"})
    await asyncio.wait_for(client.closed.wait(), 10)
    assert client.of("ERROR")[0].headers["version"] == "1.0,1.1,1.2"


async def test_a_token_in_passcode_authenticates_and_subprotocols_are_negotiated(server, make_user):
    alice = await in_thread(make_user)
    key = await in_thread(token_for, alice)
    client = await StompClient.open(stomp_url(server), subprotocols=("v10.stomp", "v11.stomp"))
    assert client.ws.subprotocol == "v11.stomp"
    await client.send_frame("CONNECT", {"accept-version": "1.1,1.0", "login": alice.username, "passcode": key})
    await client.wait_for(lambda c: c.of("CONNECTED"))
    assert client.of("CONNECTED")[0].headers["version"] == "1.1"
    await client.close()
    with pytest.raises(websockets.InvalidStatus):
        await StompClient.open(stomp_url(server), alice, subprotocols=("mqtt",))


async def test_split_and_merged_frames_are_stored_once_in_order(server, make_user, make_room):
    alice = await in_thread(make_user)
    room = await in_thread(make_room, owner=alice)
    client = await StompClient.connect(stomp_url(server), alice)
    destination = f"/sub/chat/room/{room.pk}"
    await client.subscribe(destination, "s")
    wire = [
        encode(Frame("SEND", {"destination": "/pub/chat/message"}, json.dumps({"roomId": room.pk, "message": f"m{i}"}).encode()))
        for i in range(4)
    ]  # fmt: skip
    first = wire[0]
    for cut in (3, 17, 40):  # one frame in four WebSocket messages
        await client.ws.send(first[:cut])
        first = first[cut:]
    await client.ws.send(first + b"\n" + wire[1] + wire[2][:10])  # the rest, a heart-beat, another, half a third
    await client.ws.send(wire[2][10:] + b"\r\n" + wire[3])
    await client.wait_for(lambda c: len(c.messages(destination)) == 4)
    assert [m["message"] for m in client.messages(destination)] == ["m0", "m1", "m2", "m3"]
    assert await in_thread(stored, room) == [(alice.username, f"m{i}") for i in range(4)]
    await client.close()


async def test_a_stomp_client_and_a_json_client_chat_both_ways(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    stomp = await StompClient.connect(stomp_url(server), alice)
    destination = f"/sub/chat/room/{room.pk}"
    await stomp.subscribe(destination, "room", receipt="sub")
    await stomp.wait_for(lambda c: c.of("RECEIPT"))
    json_client = await ChatClient.connect(server.ws, bob)
    expected = []
    for i in range(5):
        await stomp.send_json("/pub/chat/message", {"roomId": room.pk, "writer": alice.username, "message": f"s{i}"},
                              receipt=f"m{i}")  # fmt: skip
        await stomp.wait_for(lambda c, i=i: any(f.headers.get("receipt-id") == f"m{i}" for f in c.of("RECEIPT")))
        expected.append((alice.username, f"s{i}"))
        await json_client.send_message(room.pk, f"j{i}")
        want = len(expected) + 1
        await json_client.wait_for(lambda c, want=want: len(c.new_messages(room.pk)) >= want)
        expected.append((bob.username, f"j{i}"))
    await stomp.wait_for(lambda c: len(c.messages(destination)) >= 10)
    await asyncio.sleep(0.5)  # a duplicate would arrive within this

    heard_by_stomp = [(m["writer"], m["message"]) for m in stomp.messages(destination)]
    heard_by_json = [(m["sender"]["username"], m["body"]) for m in json_client.new_messages(room.pk)]
    assert heard_by_stomp == expected
    assert heard_by_json == expected
    assert [m["seq"] for m in stomp.messages(destination)] == list(range(1, 11))
    assert await in_thread(stored, room) == expected
    await stomp.close()
    await json_client.close()


async def test_a_receipt_resent_in_the_same_session_is_stored_once(server, make_user, make_room):
    alice = await in_thread(make_user)
    room = await in_thread(make_room, owner=alice)
    client = await StompClient.connect(stomp_url(server), alice)
    await client.subscribe(f"/sub/chat/room/{room.pk}", "s")
    for _ in range(2):
        await client.send_json("/pub/chat/message", {"roomId": room.pk, "message": "once"}, receipt="same")
    mine = str(uuid.uuid4())
    await client.send_json("/pub/chat/message", {"roomId": room.pk, "message": "given"}, **{"client-msg-id": mine})
    await client.wait_for(lambda c: any(m["message"] == "given" for m in c.messages(f"/sub/chat/room/{room.pk}")))
    assert await in_thread(stored, room) == [(alice.username, "once"), (alice.username, "given")]
    assert await in_thread(lambda: str(Message.objects.get(room=room, body="given").client_msg_id)) == mine
    await client.close()


async def test_unsubscribe_enter_and_disconnect(server, make_user, make_room, settings):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    client = await StompClient.connect(stomp_url(server), alice)
    room_dest, user_dest = f"/sub/chat/room/{room.pk}", f"/sub/user/{alice.pk}"
    await client.subscribe(room_dest, "room")
    await client.subscribe(user_dest, "me")
    await client.send_json("/pub/chat/enter", {"roomId": str(room.pk), "writer": alice.username}, receipt="e")
    await client.wait_for(lambda c: c.messages(user_dest))
    assert client.messages(user_dest)[0] == {"type": "enter", "roomId": str(room.pk), "lastReadSeq": 0, "lastSeq": 0,
                                             "unread": 0}  # fmt: skip
    await client.send_frame("UNSUBSCRIBE", {"id": "room", "receipt": "u"})
    await client.wait_for(lambda c: any(f.headers.get("receipt-id") == "u" for f in c.of("RECEIPT")))
    json_client = await ChatClient.connect(server.ws, bob)
    await json_client.send_message(room.pk, "after unsubscribe")
    await json_client.wait_for(lambda c: c.new_messages(room.pk))
    await asyncio.sleep(0.5)
    assert client.messages(room_dest) == []  # the enter broadcast is off, and it unsubscribed
    await client.send_frame("DISCONNECT", {"receipt": "bye"})
    await asyncio.wait_for(client.closed.wait(), 10)
    assert client.of("RECEIPT")[-1].headers["receipt-id"] == "bye"
    await json_client.close()


async def test_heart_beats_are_sent_and_a_silent_client_is_closed(server, make_user):
    alice = await in_thread(make_user)
    port = free_port()
    server.start("web:stomp-hb", port=port, CHAT_STOMP_HEART_BEAT="300,300")
    try:
        client = await StompClient.connect(stomp_url(server, port), alice, heart_beat="0,300")
        assert client.of("CONNECTED")[0].headers["heart-beat"] == "300,300"
        await asyncio.sleep(1.5)
        assert client.parser.heart_beats >= 3
        assert not client.closed.is_set()  # the client promised no beats: never closed for silence
        await client.close()

        silent = await StompClient.connect(stomp_url(server, port), alice, heart_beat="300,0")
        await asyncio.wait_for(silent.closed.wait(), 5)
        assert silent.of("ERROR")[0].headers["message"] == "heart-beat timeout"
    finally:
        server.stop("web:stomp-hb")
