"""End to end: real WebSocket clients -> daphne -> Kafka -> persist consumer -> PostgreSQL -> fan-out."""

from __future__ import annotations

import pytest
import websockets

from chat_messages.models import Message
from tests.support import ChatClient, in_thread

PER_SENDER = 10  # messages each of the two senders sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_three_members_two_senders_everyone_gets_everything_once_in_order(server, make_user, make_room):
    alice, bob, carol = await in_thread(lambda: [make_user() for _ in range(3)])
    room = await in_thread(make_room, owner=alice, members=[bob, carol])
    clients = [await ChatClient.connect(server.ws, u) for u in (alice, bob, carol)]
    sent = []
    for i in range(PER_SENDER):
        sent.append(await clients[0].send_message(room.pk, f"alice {i}"))
        sent.append(await clients[1].send_message(room.pk, f"bob {i}"))

    for client in clients:
        await client.wait_for(lambda c: len(c.new_messages(room.pk)) >= 20)
    # A marker after the 20 (the same room: the same partition, stored and announced in order):
    # a duplicate of any of them would arrive before it.
    marker = await clients[2].send_message(room.pk, "marker")
    for client in clients:
        await client.wait_for(lambda c: marker in [m["client_msg_id"] for m in c.new_messages(room.pk)])

    for client in clients:
        received = client.new_messages(room.pk)
        assert received.pop()["client_msg_id"] == marker
        assert [m["seq"] for m in received] == list(range(1, 21))
        assert sorted(m["client_msg_id"] for m in received) == sorted(sent)
    # Each sender heard "accepted" once for each of its ten messages. (Not necessarily before the
    # message came back: persist may store and announce it before this server has read the
    # broker's acknowledgement; clients settle a pending message on either, docs/protocol.md.)
    for sender, mine in ((clients[0], sent[0::2]), (clients[1], sent[1::2])):
        await sender.wait_for(lambda c: len(c.of_type("message.accepted")) >= PER_SENDER)
        accepted = [f["client_msg_id"] for f in sender.of_type("message.accepted")]
        assert sorted(accepted) == sorted(mine)
    assert await in_thread(Message.objects.filter(room=room).count) == 21  # with the marker
    for client in clients:
        await client.close()


async def test_resending_the_same_client_msg_id_stores_and_broadcasts_once(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    watcher = await ChatClient.connect(server.ws, bob)
    sender = await ChatClient.connect(server.ws, alice)
    msg_id = await sender.send_message(room.pk, "only once")
    await sender.send_message(room.pk, "only once", client_msg_id=msg_id)
    await sender.wait_for(lambda c: len(c.of_type("message.accepted")) == 2)
    # Reconnect and send it a third time.
    await sender.close()
    sender = await ChatClient.connect(server.ws, alice)
    await sender.send_message(room.pk, "only once", client_msg_id=msg_id)
    await sender.wait_for(lambda c: len(c.of_type("message.accepted")) == 1)
    # The new socket never saw it stored: the re-send brings it its own message.new (to the
    # sender only), so a client can keep a message pending until then (docs/protocol.md).
    await sender.wait_for(lambda c: any(m["client_msg_id"] == msg_id for m in c.new_messages(room.pk)))
    # (The earlier re-send's copy may reach this socket too: clients drop a seq they have.)
    assert {m["seq"] for m in sender.new_messages(room.pk)} == {1}
    marker = await sender.send_message(room.pk, "after")  # ordered behind the re-sends in Kafka
    await watcher.wait_for(lambda c: any(m["client_msg_id"] == marker for m in c.new_messages(room.pk)))

    assert [m["client_msg_id"] for m in watcher.new_messages(room.pk)] == [msg_id, marker]
    assert await in_thread(Message.objects.filter(room=room, client_msg_id=msg_id).count) == 1
    await sender.close()
    await watcher.close()


async def test_bad_input_gets_its_error_code_stores_nothing_and_the_server_keeps_serving(
    server, make_user, make_room, settings
):
    alice, bob, outsider = await in_thread(lambda: [make_user() for _ in range(3)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    client = await ChatClient.connect(server.ws, alice)
    stranger = await ChatClient.connect(server.ws, outsider)

    await stranger.send_message(room.pk, "let me in")
    await client.send_message(room.pk, "x" * (settings.CHAT_MAX_BODY_BYTES + 1))
    await client.ws.send("{not json")
    await client.send(type="message.send", room=room.pk, client_msg_id="not-a-uuid", body="hi", req="r1")
    await client.send(type="no.such.type", req="r2")

    await stranger.wait_for(lambda c: len(c.of_type("error")) == 1)
    await client.wait_for(lambda c: len(c.of_type("error")) == 4)
    assert stranger.of_type("error")[0]["code"] == "not_member"
    assert [f["code"] for f in client.of_type("error")] == ["too_large", "invalid", "invalid", "invalid"]
    assert client.of_type("error")[2]["req"] == "r1"

    # The same socket still works.
    ok = await client.send_message(room.pk, "still here")
    await client.wait_for(lambda c: any(m["client_msg_id"] == ok for m in c.new_messages(room.pk)))
    assert await in_thread(lambda: list(Message.objects.filter(room=room).values_list("body", flat=True))) == [
        "still here"
    ]
    await client.close()
    await stranger.close()


async def test_a_bad_token_is_refused_with_4401(server):
    ws = await websockets.connect(server.ws, additional_headers={"Authorization": "Token nope"})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd.code == 4401


async def test_sync_replays_what_a_client_missed_in_order(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    sender = await ChatClient.connect(server.ws, alice)
    ids = [await sender.send_message(room.pk, f"m{i}") for i in range(5)]
    await sender.wait_for(lambda c: len(c.new_messages(room.pk)) == 5)

    late = await ChatClient.connect(server.ws, bob)
    await late.send(type="sync", rooms={str(room.pk): 2}, req="s")
    await late.wait_for(lambda c: c.of_type("sync.done"))
    assert [m["seq"] for m in late.new_messages(room.pk)] == [3, 4, 5]
    assert [m["client_msg_id"] for m in late.new_messages(room.pk)] == ids[2:]
    await sender.close()
    await late.close()


async def test_typing_reaches_the_other_members_at_most_once_a_second(server, make_user, make_room):
    alice, bob, outsider = await in_thread(lambda: [make_user() for _ in range(3)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    typist = await ChatClient.connect(server.ws, alice)
    reader = await ChatClient.connect(server.ws, bob)
    stranger = await ChatClient.connect(server.ws, outsider)
    for _ in range(5):
        await typist.send(type="typing", room=room.pk)
    await stranger.send(type="typing", room=room.pk, req="t")
    await reader.wait_for(lambda c: c.of_type("typing"))
    await stranger.wait_for(lambda c: c.of_type("error"))
    # A marker through the room after the typing: a second typing frame would arrive before it.
    marker = await typist.send_message(room.pk, "marker")
    await reader.wait_for(lambda c: [m["client_msg_id"] for m in c.new_messages(room.pk)] == [marker])

    assert [f["user"]["username"] for f in reader.of_type("typing")] == [alice.username]
    assert stranger.of_type("error")[0]["code"] == "not_member"
    assert await in_thread(Message.objects.filter(room=room).count) == 1  # the marker: typing is never stored
    for client in (typist, reader, stranger):
        await client.close()
