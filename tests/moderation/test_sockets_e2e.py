"""End to end against a running server: what a moderator's sanctions do to open sockets."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from accounts.services import account_suspend
from chat_messages.models import Message
from moderation.services import warning_issue
from rooms.models import RoomSanction
from rooms.services import room_sanction_impose, room_sanction_lift
from tests.accounts.test_sockets_e2e import close_code, ready
from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def settled(client: ChatClient) -> None:
    """One round trip: the server has set the client's socket up (its subscriptions too)."""
    await client.send(type="sync", rooms={}, req="settled")
    await client.wait_for(lambda c: any(f.get("req") == "settled" for f in c.of_type("sync.done")))


async def test_a_suspended_users_socket_closes_with_4403_and_cannot_come_back(server, make_user):
    alice, mod = await in_thread(lambda: [make_user("alice"), make_user("mod")])
    key = await in_thread(token_for, alice)
    ws = await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {key}"})
    await ready(ws)

    await in_thread(account_suspend, user=alice, reason="spam", actor=mod)

    assert await close_code(ws) == 4403
    # Its token went with the suspension: the old one is refused as unknown...
    again = await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {key}"})
    assert await close_code(again) == 4401
    # ...and one that exists all the same (issued around that moment) is refused as suspended.
    key = await in_thread(token_for, alice)
    again = await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {key}"})
    assert await close_code(again) == 4403


async def test_a_muted_user_is_refused_while_the_others_chat(server, make_user, make_room):
    alice, bob, mod = await in_thread(lambda: [make_user("alice"), make_user("bob"), make_user("mod")])
    room = await in_thread(make_room, owner=alice, members=[bob])
    clients = [await ChatClient.connect(server.ws, user) for user in (alice, bob)]
    a, b = clients
    for client in clients:
        await settled(client)

    await in_thread(room_sanction_impose, room=room, user=bob, kind=RoomSanction.Kind.MUTE, actor=mod)
    await asyncio.sleep(0.3)  # the control reaches bob's socket after commit
    muted = await b.send_message(room.pk, "can you hear me?")
    await b.wait_for(lambda c: any(f.get("client_msg_id") == muted for f in c.of_type("error")))
    error = next(f for f in b.of_type("error") if f.get("client_msg_id") == muted)
    assert error["code"] == "muted" and "until a moderator lifts it" in error["detail"]
    assert error["room"] == room.pk

    await a.send_message(room.pk, "still here")
    await b.wait_for(lambda c: [m["body"] for m in c.new_messages(room.pk)] == ["still here"])
    assert not await in_thread(lambda: Message.objects.filter(room=room, sender=bob).exists())

    sanction = await in_thread(lambda: RoomSanction.objects.get(user=bob))
    await in_thread(room_sanction_lift, sanction=sanction, actor=mod)
    await asyncio.sleep(0.3)
    await b.send_message(room.pk, "back")
    await a.wait_for(lambda c: "back" in [m["body"] for m in c.new_messages(room.pk)])
    for client in clients:
        await client.close()


async def test_a_banned_users_socket_stops_receiving_the_room(server, make_user, make_room):
    alice, bob, mod = await in_thread(lambda: [make_user("alice"), make_user("bob"), make_user("mod")])
    room = await in_thread(make_room, owner=alice, members=[bob])
    a, b = [await ChatClient.connect(server.ws, user) for user in (alice, bob)]
    for client in (a, b):
        await settled(client)
    await a.send_message(room.pk, "before")
    await b.wait_for(lambda c: [m["body"] for m in c.new_messages(room.pk)] == ["before"])

    await in_thread(room_sanction_impose, room=room, user=bob, kind=RoomSanction.Kind.BAN, actor=mod)
    await b.wait_for(
        lambda c: any(f["room"] == room.pk and f["user"] == bob.pk for f in c.of_type("participant.removed"))
    )
    await a.wait_for(
        lambda c: any((m.get("system") or {}).get("event") == "removed" for m in c.new_messages(room.pk, system=True))
    )
    await a.send_message(room.pk, "after")
    await a.wait_for(lambda c: "after" in [m["body"] for m in c.new_messages(room.pk)])
    await asyncio.sleep(0.5)
    assert [m["body"] for m in b.new_messages(room.pk)] == ["before"]
    refused = await b.send_message(room.pk, "let me in")
    await b.wait_for(lambda c: any(f.get("client_msg_id") == refused for f in c.of_type("error")))
    assert next(f for f in b.of_type("error") if f.get("client_msg_id") == refused)["code"] == "not_member"
    for client in (a, b):
        await client.close()


async def test_a_warning_arrives_on_the_users_socket(server, make_user):
    alice, mod = await in_thread(lambda: [make_user("alice"), make_user("mod")])
    client = await ChatClient.connect(server.ws, alice)
    await settled(client)
    warning = await in_thread(warning_issue, user=alice, text="Keep it civil.", actor=mod)
    await client.wait_for(lambda c: c.of_type("moderation.warning.v1"))
    (frame,) = client.of_type("moderation.warning.v1")
    assert frame["warning"]["id"] == warning.pk and frame["warning"]["text"] == "Keep it civil."
    await client.close()
    assert json.dumps(frame)  # plain JSON, as every frame
