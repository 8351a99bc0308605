"""Presence end to end: real clients on web processes of their own, with short presence timings.

Away after 2 s of idleness, sockets lapsing after 3 s, each process checking every 0.3 s; one
process is killed with SIGKILL to show that its users still turn offline.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
import requests

from rooms.services import participant_remove, room_open_direct
from tests.conftest import free_port
from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AWAY_S, TTL_S, SWEEP_S = 2, 3, 0.3
TIMINGS = {"CHAT_AWAY_AFTER_S": str(AWAY_S), "CHAT_SOCKET_TTL_S": str(TTL_S), "CHAT_PRESENCE_SWEEP_S": str(SWEEP_S)}


@pytest.fixture(scope="module")
def quick(server):
    """A web process on the session's stack with short presence timings: its (http, ws) addresses."""
    port = free_port()
    server.start("web:presence", port=port, **TIMINGS)
    yield f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/chat/"
    server.stop("web:presence")


def about(client: ChatClient, user) -> list[dict]:
    """The presence.updated frames ``client`` heard about ``user``."""
    return [f for f in client.of_type("presence.updated") if f["user"]["id"] == user.pk]


def statuses(client: ChatClient, user) -> list[str]:
    return [f["status"] for f in about(client, user)]


async def rest_get(http: str, user, path: str) -> requests.Response:
    key = await in_thread(token_for, user)
    headers = {"Authorization": f"Token {key}"}
    return await asyncio.to_thread(requests.get, http + path, headers=headers, timeout=10)


async def test_a_co_member_sees_online_away_online_offline_and_a_stranger_hears_nothing(quick, make_user, make_room):
    http, ws = quick
    alice, bob, carol, dave = await in_thread(lambda: [make_user() for _ in range(4)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    await in_thread(make_room, owner=bob, members=[alice], name="second")  # two rooms shared: one copy each
    await in_thread(make_room, owner=carol, members=[dave], name="elsewhere")  # carol shares none with bob
    a, c = await ChatClient.connect(ws, alice), await ChatClient.connect(ws, carol)

    b = await ChatClient.connect(ws, bob)
    await a.wait_for(lambda cl: statuses(cl, bob) == ["online"])
    online = about(a, bob)[0]
    assert online["user"] == {"id": bob.pk, "username": bob.username} and online["last_seen"]
    participants = (await rest_get(http, alice, f"/api/v1/rooms/{room.pk}/participants/")).json()
    assert {p["user"]["id"]: p["presence"]["status"] for p in participants} == {alice.pk: "online", bob.pk: "online"}

    # Idle for AWAY_S: away (and the REST shape says so too).
    await a.wait_for(lambda cl: statuses(cl, bob) == ["online", "away"], timeout=AWAY_S + 10)
    participants = (await rest_get(http, alice, f"/api/v1/rooms/{room.pk}/participants/")).json()
    assert {p["user"]["id"]: p["presence"]["status"] for p in participants}[bob.pk] == "away"

    await b.send(type="presence.active")
    await a.wait_for(lambda cl: statuses(cl, bob) == ["online", "away", "online"], timeout=5)
    # Typing counts as activity too: keep bob busy for longer than AWAY_S, he stays online.
    for _ in range(int(AWAY_S / 0.5) + 2):
        await b.send(type="typing", room=room.pk)
        await asyncio.sleep(0.5)
    assert statuses(a, bob) == ["online", "away", "online"]

    await b.close()
    await a.wait_for(lambda cl: statuses(cl, bob)[-1:] == ["offline"], timeout=5)
    assert statuses(a, bob) == ["online", "away", "online", "offline"], "one copy, though two rooms are shared"
    assert about(a, bob)[-1]["last_seen"]

    # Carol shared no room with bob: she heard nothing of him (a marker first: anything sent to
    # her before it has arrived).
    await c.send(type="sync", rooms={}, req="marker")
    await c.wait_for(lambda cl: cl.of_type("sync.done"))
    assert about(c, bob) == []
    stranger = await rest_get(http, carol, f"/api/v1/rooms/{room.pk}/participants/")
    assert stranger.status_code in (403, 404) and "presence" not in stranger.text
    await a.close()
    await c.close()


async def test_the_direct_rooms_other_person_carries_presence_in_the_room_list(quick, make_user):
    http, ws = quick
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room, _ = await in_thread(room_open_direct, user=alice, other=bob)

    def other_of(rooms: list[dict]) -> dict:
        (mine,) = [r for r in rooms if r["id"] == room.pk]
        return mine["other_user"]

    listed = other_of((await rest_get(http, alice, "/api/v1/rooms/")).json())
    # (last_seen may be known: Redis outlives a test database, whose user ids start again.)
    assert listed["id"] == bob.pk and listed["presence"]["status"] == "offline"
    b = await ChatClient.connect(ws, bob)
    await b.send(type="sync", rooms={}, req="up")
    await b.wait_for(lambda cl: cl.of_type("sync.done"))
    listed = other_of((await rest_get(http, alice, "/api/v1/rooms/")).json())
    assert listed["presence"]["status"] == "online" and listed["presence"]["last_seen"]
    one = (await rest_get(http, alice, f"/api/v1/rooms/{room.pk}/")).json()
    assert one["other_user"]["presence"]["status"] == "online"
    await b.close()


async def test_the_users_of_a_killed_server_turn_offline_once_their_sockets_lapse(server, quick, make_user, make_room):
    _, ws = quick
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    await in_thread(make_room, owner=alice, members=[bob])
    port = free_port()
    server.start("web:doomed", port=port, **TIMINGS)
    try:
        a = await ChatClient.connect(ws, alice)
        b = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws/chat/", bob)
        await a.wait_for(lambda cl: statuses(cl, bob) == ["online"])
        await b.send(type="presence.active")
        server.stop("web:doomed", signal.SIGKILL)  # no close, no unregister: its entries just stop being refreshed
        await a.wait_for(lambda cl: statuses(cl, bob)[-1:] == ["offline"], timeout=TTL_S + 10)
        await asyncio.sleep(1)  # every process sweeps: still one announcement
        assert statuses(a, bob) == ["online", "offline"]
        assert about(a, bob)[-1]["last_seen"]
        await a.close()
    finally:
        server.stop("web:doomed", signal.SIGKILL)


async def settled(client: ChatClient, req: str) -> None:
    """Everything sent to ``client`` before now has arrived (a sync's answer comes after it)."""
    await client.send(type="sync", rooms={}, req=req)
    await client.wait_for(lambda cl: any(f.get("req") == req for f in cl.of_type("sync.done")))


async def test_a_removed_member_neither_hears_nor_is_heard(quick, make_user, make_room):
    """Presence stops at a removal: removed from the only room they shared with someone, a member
    neither hears that person's changes nor is heard any more."""
    _, ws = quick
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    a = await ChatClient.connect(ws, alice)
    b = await ChatClient.connect(ws, bob)
    await a.wait_for(lambda cl: statuses(cl, bob) == ["online"])

    await in_thread(participant_remove, actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    await b.wait_for(lambda cl: cl.of_type("participant.removed"))

    # Both idle past AWAY_S: each turns away, and neither may hear of the other's change.
    await asyncio.sleep(AWAY_S + 2)
    await settled(a, "a1")
    await settled(b, "b1")
    assert "away" in statuses(a, alice)  # alice did change (her own socket heard it)...
    assert statuses(b, alice) == []  # ...but bob, removed, did not
    assert statuses(a, bob) == ["online"]  # nor did alice hear bob turn away
    # Nor of bob leaving altogether.
    await b.close()
    await asyncio.sleep(1)
    await settled(a, "a2")
    assert statuses(a, bob) == ["online"]
    await a.close()
