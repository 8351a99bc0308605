"""Presence in the rooms REST shapes: members and a direct room's other person, shown only while shared."""

from __future__ import annotations

import pytest

from rooms.services import participant_leave, room_open_direct
from streams.realtime.limits import SocketRegistry
from streams.realtime.presence import Presence
from tests.support import in_thread

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def connect():
    """``await connect(user)``: a socket of the user as a server process counts it (registry, presence)."""
    registry, presence = SocketRegistry(), Presence()

    async def open_socket(user) -> None:
        socket_id = registry.new_id()
        assert await registry.register(user_id=user.pk, socket_id=socket_id)
        await presence.connected(user_id=user.pk, username=user.username, socket_id=socket_id, rooms=set())

    yield open_socket
    for task in (registry.refresher, presence.ticker):
        if task is not None:
            task.cancel()


async def test_members_and_the_direct_rooms_other_person_carry_presence_while_they_share_the_room(
    make_user, make_room, api, connect
):
    alice, bob, carol, dave = await in_thread(lambda: [make_user() for _ in range(4)])
    group = await in_thread(make_room, owner=alice, members=[bob])
    direct, _ = await in_thread(room_open_direct, user=alice, other=carol)
    await connect(bob)
    await connect(carol)

    def read(path: str):
        return api(alice).get(path).json()

    members = await in_thread(read, f"/api/v1/rooms/{group.pk}/participants/")
    presence = {m["user"]["id"]: m["presence"] for m in members}
    assert presence[bob.pk]["status"] == "online" and presence[bob.pk]["last_seen"]
    assert presence[alice.pk]["status"] == "offline"
    rooms = {r["id"]: r for r in await in_thread(read, "/api/v1/rooms/")}
    assert rooms[direct.pk]["other_user"]["presence"]["status"] == "online"
    assert rooms[group.pk]["other_user"] is None
    assert (await in_thread(read, f"/api/v1/rooms/{direct.pk}/"))["other_user"]["presence"]["status"] == "online"

    # Inviting someone answers their presence too.
    invited = await in_thread(
        lambda: api(alice).post(f"/api/v1/rooms/{group.pk}/participants/", {"user": dave.pk}, format="json").json()
    )
    assert invited["presence"]["status"] == "offline"

    # Carol leaves the direct room: she shares no room with Alice any more, so nothing of her shows.
    await in_thread(participant_leave, user_id=carol.pk, room_id=direct.pk)
    other = (await in_thread(read, f"/api/v1/rooms/{direct.pk}/"))["other_user"]
    assert other["id"] == carol.pk and other["presence"] is None
