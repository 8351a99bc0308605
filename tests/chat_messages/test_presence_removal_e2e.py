"""Presence stops at a removal: a member removed from the only room they shared with someone
neither hears that person's changes nor is heard any more (issue 18: delivered only to users who
share a room)."""

from __future__ import annotations

import asyncio

import pytest

from rooms.services import participant_remove
from tests.conftest import free_port
from tests.support import ChatClient, in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AWAY_S, TTL_S, SWEEP_S = 2, 3, 0.3
TIMINGS = {"CHAT_AWAY_AFTER_S": str(AWAY_S), "CHAT_SOCKET_TTL_S": str(TTL_S), "CHAT_PRESENCE_SWEEP_S": str(SWEEP_S)}


@pytest.fixture(scope="module")
def quick(server):
    """A web process on the session's stack with short presence timings: its ws address."""
    port = free_port()
    server.start("web:presence-removal", port=port, **TIMINGS)
    yield f"ws://127.0.0.1:{port}/ws/chat/"
    server.stop("web:presence-removal")


def statuses(client: ChatClient, user) -> list[str]:
    return [f["status"] for f in client.of_type("presence.updated") if f["user"]["id"] == user.pk]


async def settled(client: ChatClient, req: str) -> None:
    """Everything sent to ``client`` before now has arrived (a sync's answer comes after it)."""
    await client.send(type="sync", rooms={}, req=req)
    await client.wait_for(lambda cl: any(f.get("req") == req for f in cl.of_type("sync.done")))


async def test_a_removed_member_neither_hears_nor_is_heard(quick, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    a = await ChatClient.connect(quick, alice)
    b = await ChatClient.connect(quick, bob)
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
