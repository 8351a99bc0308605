"""End to end over real sockets: read positions on entering, reads, and removal from a room."""

from __future__ import annotations

import asyncio

import pytest
import requests

from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def concerns(frame: dict, room_id: int) -> bool:
    return frame.get("room") == room_id or frame.get("message", {}).get("room") == room_id


async def rest(server, user, method: str, path: str, **kwargs) -> requests.Response:
    key = await in_thread(token_for, user)
    headers = {"Authorization": f"Token {key}"}
    return await asyncio.to_thread(requests.request, method, server.http + path, headers=headers, timeout=10, **kwargs)


async def test_a_removed_member_hears_nothing_more_from_the_room_while_the_others_do(server, make_user, make_room):
    alice, bob, carol = await in_thread(lambda: [make_user() for _ in range(3)])
    room = await in_thread(make_room, owner=alice, members=[bob, carol])
    other_room = await in_thread(make_room, owner=carol, members=[bob])
    a, b, c = [await ChatClient.connect(server.ws, u) for u in (alice, bob, carol)]

    await a.send_message(room.pk, "before")
    for client in (a, b, c):
        await client.wait_for(lambda cl: len(cl.new_messages(room.pk)) == 1)

    removed = await rest(server, alice, "DELETE", f"/api/v1/rooms/{room.pk}/participants/{bob.pk}/")
    assert removed.status_code == 204
    await b.wait_for(lambda cl: cl.of_type("participant.removed"))
    assert b.of_type("participant.removed") == [{"type": "participant.removed", "room": room.pk, "user": bob.pk}]
    await c.wait_for(lambda cl: cl.of_type("participant.removed"))
    heard_by_bob = len(b.frames)

    await a.send_message(room.pk, "after")
    await c.send(type="typing", room=room.pk)
    for client in (a, c):
        await client.wait_for(lambda cl: len(cl.new_messages(room.pk)) == 2)
    # A marker to his other room once the room's events are out: one leaking to him would come first
    # (his server's one Redis subscription gets what is published in order, whatever the room).
    await c.send_message(other_room.pk, "bob is still here")
    await b.wait_for(lambda cl: len(cl.new_messages(other_room.pk)) == 1)  # his other rooms still reach him
    assert [f for f in b.frames[heard_by_bob:] if concerns(f, room.pk)] == []

    # And he can no longer act in it.
    await b.send_message(room.pk, "let me back")
    await b.send(type="room.read", room=room.pk, seq=2, req="read")
    await b.send(type="room.enter", room=room.pk, req="enter")
    await b.wait_for(lambda cl: len(cl.of_type("error")) == 3)
    assert {e["code"] for e in b.of_type("error")} == {"not_member"}
    for client in (a, b, c):
        await client.close()


async def test_entering_a_room_returns_the_read_position_and_page_and_tells_nobody(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    a = await ChatClient.connect(server.ws, alice)
    b, b_phone = await ChatClient.connect(server.ws, bob), await ChatClient.connect(server.ws, bob)
    for i in range(4):
        await a.send_message(room.pk, f"message {i + 1}")
    await b.wait_for(lambda cl: len(cl.new_messages(room.pk)) == 4)
    assert [m["unread_count"] for m in b.new_messages(room.pk)] == [1, 1, 1, 1]

    await b.send(type="room.read", room=room.pk, seq=2)
    expected = {"type": "room.read", "room": room.pk, "user": bob.pk, "seq": 2, "from_seq": 0}
    for client in (a, b, b_phone):  # the room's members, and bob's other session
        await client.wait_for(lambda cl: expected in cl.frames)
    await b.send(type="room.read", room=room.pk, seq=1)  # never backward: no event
    before = {id(cl): len(cl.frames) for cl in (a, b_phone)}

    await b.send(type="room.enter", room=room.pk, req="enter")
    await b.wait_for(lambda cl: cl.of_type("room.entered"))
    entered = b.of_type("room.entered")[0]
    assert (entered["req"], entered["room"], entered["last_read_seq"], entered["last_seq"], entered["unread"]) == (
        "enter", room.pk, 2, 4, 2,
    )  # fmt: skip
    assert [m["seq"] for m in entered["messages"]] == [1, 2, 3, 4]
    assert [m["unread_count"] for m in entered["messages"]] == [0, 0, 1, 1]
    # A marker through the room after the enter: anything the enter told the others would come first.
    await b.send(type="typing", room=room.pk)
    for client in (a, b_phone):
        await client.wait_for(lambda cl: cl.of_type("typing"))
    assert [f["type"] for f in a.frames[before[id(a)] :]] == ["typing"]
    assert [f["type"] for f in b_phone.frames[before[id(b_phone)] :]] == ["typing"]

    state = (await rest(server, bob, "GET", f"/api/v1/rooms/{room.pk}/")).json()
    assert (state["last_read_seq"], state["last_seq"], state["unread"]) == (2, 4, 2)
    for client in (a, b, b_phone):
        await client.close()
