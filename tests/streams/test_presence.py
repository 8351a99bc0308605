"""Presence against real Redis: the scripts that decide each change, as several processes run them.

Each ``Presence`` here stands for one server process (with a socket registry of its own); the
test drives its calls and its tick by hand and listens to the room channels the changes go to.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
import redis
from django.conf import settings

from rooms.selectors import room_ids_by_user
from streams.realtime import presence
from streams.realtime.hub import CHANNEL_PREFIX, parse_event, redis_client
from streams.realtime.limits import SocketRegistry
from streams.realtime.presence import LIVE, Presence, is_fresh, presence_read, state_key
from tests.support import in_thread

# A sweep reads the rooms of whoever lapsed (other tests' users too) from the database.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rooms():
    """Room ids per user, as the database would give them to the sweep."""
    return {}


@pytest.fixture
def processes(rooms):
    """``processes(n)``: n new server processes; killed after the test (their refreshers stop)."""
    made = []

    def make(n: int):
        made.extend(Process(rooms) for _ in range(n))
        return made[-n:] if n > 1 else made[-1]

    yield make
    for process in made:
        process.kill()


class Process:
    """One server process: its socket registry and its presence tracker."""

    def __init__(self, rooms: dict[int, list[int]]) -> None:
        self.registry = SocketRegistry()
        self.presence = Presence()

        async def rooms_of(*, user_ids):
            # The test's own (fake) users, else the database, as a server reads it.
            found = await in_thread(room_ids_by_user, user_ids=user_ids)
            return {u: rooms.get(u) or found.get(u, []) for u in user_ids}

        self.presence.rooms_of = rooms_of

    async def open(self, user_id: int, room_ids) -> str:
        socket_id = self.registry.new_id()
        assert await self.registry.register(user_id=user_id, socket_id=socket_id)
        await self.presence.connected(user_id=user_id, username=f"u{user_id}", socket_id=socket_id, rooms=set(room_ids))
        return socket_id

    async def close(self, user_id: int, socket_id: str) -> None:
        await self.registry.unregister(socket_id=socket_id)
        await self.presence.disconnected(user_id=user_id, socket_id=socket_id)

    def kill(self) -> None:
        """Stop as a killed process does: nothing refreshes its sockets or ticks any more."""
        for task in (self.registry.refresher, self.presence.ticker):
            if task is not None:
                task.cancel()
        self.registry.local.clear()
        self.presence.sockets.clear()


class Listener:
    """Every presence.updated published to some room groups, with its control."""

    def __init__(self, *room_ids: int) -> None:
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(*(f"{CHANNEL_PREFIX}room.{r}" for r in room_ids))
        self.pubsub.get_message(timeout=1.0)
        self.seen: list[tuple[int, dict, dict | None]] = []

    def drain(self, settle: float = 0.3) -> list[tuple[int, dict, dict | None]]:
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message and message["type"] == "message":
                frames, control = parse_event(message["data"])
                room = int(message["channel"].decode().rsplit(".", 1)[1])
                self.seen += [(room, json.loads(f), control) for f in frames]
        out, self.seen = self.seen, []
        return out

    def statuses(self, settle: float = 0.3) -> list[tuple[int, int, str]]:
        """(room, user, status) of each frame since the last call."""
        return [(room, f["user"]["id"], f["status"]) for room, f, _ in self.drain(settle)]

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def listen():
    opened = []

    def make(*room_ids):
        opened.append(Listener(*room_ids))
        return opened[-1]

    yield make
    for listener in opened:
        listener.close()


@pytest.fixture(autouse=True)
def quiet_process_tracker():
    """This test process's own tracker (of other tests' in-process sockets) sweeps lapsed users too,
    and would take these tests' announcements: stopped here (its next socket starts it again)."""
    tracker = presence._tracker
    if tracker is not None and tracker.ticker is not None:
        tracker.ticker.cancel()


@pytest.fixture(autouse=True)
def fast(settings):
    settings.CHAT_AWAY_AFTER_S = 0.5
    settings.CHAT_SOCKET_TTL_S = 0.9
    settings.CHAT_PRESENCE_SWEEP_S = 3600  # the tests tick by hand


def new_user() -> int:
    return random.randrange(10**12, 10**13)  # not a real user: these tests touch Redis only


async def member(make_user, make_room) -> tuple[int, int]:
    """A real user in a real room: every server's sweep (not only this test's) announces to it."""
    user = await in_thread(make_user)
    room = await in_thread(make_room, owner=user)
    return user.pk, room.pk


async def test_first_socket_online_away_when_idle_back_on_activity_offline_when_the_last_closes(processes, listen):
    user, (room_a, room_b) = new_user(), (new_user(), new_user())
    heard = listen(room_a, room_b)
    one, two = processes(2)

    first = await one.open(user, [room_a, room_b])
    assert sorted(heard.statuses()) == sorted([(room_a, user, "online"), (room_b, user, "online")])
    second = await two.open(user, [room_a, room_b])  # a second socket, elsewhere: no news
    assert heard.statuses() == []
    assert presence_read([user])[user]["status"] == "online"

    await asyncio.sleep(0.6)  # idle past CHAT_AWAY_AFTER_S
    await asyncio.gather(one.presence.tick(), two.presence.tick())  # both processes notice
    assert sorted(heard.statuses()) == sorted([(room_a, user, "away"), (room_b, user, "away")]), "announced once"
    assert presence_read([user])[user]["status"] == "away"

    two.presence.active(user)  # seen away here: written at once, not at the next tick
    await asyncio.sleep(0.1)
    assert sorted(heard.statuses()) == sorted([(room_a, user, "online"), (room_b, user, "online")])

    await one.close(user, first)  # one socket is still open elsewhere
    assert heard.statuses() == []
    before = time.time()
    await two.close(user, second)
    frames = heard.drain()
    assert [(f["status"], f["user"]) for _, f, _ in frames] == [("offline", {"id": user, "username": f"u{user}"})] * 2
    last_seen = frames[0][1]["last_seen"]
    assert abs(time.mktime(time.strptime(last_seen[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone - before) < 5
    assert presence_read([user])[user] == {"status": "offline", "last_seen": last_seen}
    assert redis_client().zscore(LIVE, user) is None


async def test_activity_from_another_process_keeps_the_user_online(processes, listen):
    user, room = new_user(), new_user()
    heard = listen(room)
    idle, busy = processes(2)
    await idle.open(user, [room])
    await busy.open(user, [room])
    heard.statuses()
    for _ in range(4):  # active on `busy` only, for longer than the away threshold
        await asyncio.sleep(0.2)
        busy.presence.active(user)
        await busy.presence.tick()
        await idle.presence.tick()
    assert heard.statuses() == []
    assert presence_read([user])[user]["status"] == "online"


async def test_a_killed_process_users_turn_offline_once_after_their_sockets_lapse(
    processes, listen, make_user, make_room
):
    user, room = await member(make_user, make_room)
    heard = listen(room)
    dead, alive, other = processes(3)
    await dead.open(user, [room])
    assert heard.statuses() == [(room, user, "online")]
    dead.kill()

    await asyncio.gather(alive.presence.sweep(), other.presence.sweep())
    assert heard.statuses() == [], "not before the sockets lapse"
    await asyncio.sleep(1.0)  # CHAT_SOCKET_TTL_S
    # Read as offline at once, even before a sweep said so.
    assert presence_read([user])[user]["status"] == "offline"
    await asyncio.gather(alive.presence.sweep(), other.presence.sweep())
    assert heard.statuses() == [(room, user, "offline")], "announced once, whoever swept"
    assert redis_client().zscore(LIVE, user) is None
    assert redis_client().hget(state_key(user), "s") == b"offline"


async def test_a_user_who_reconnected_elsewhere_is_not_swept_offline(processes, rooms, listen, settings):
    settings.CHAT_AWAY_AFTER_S = 60
    user, room = new_user(), new_user()
    rooms[user] = [room]
    heard = listen(room)
    dead, alive = processes(2)
    await dead.open(user, [room])
    dead.kill()
    await asyncio.sleep(0.5)
    await alive.open(user, [room])  # still online: no news
    await asyncio.sleep(0.6)  # the dead socket has lapsed, the new one is refreshed by `alive`
    await alive.presence.tick()
    await alive.presence.sweep()
    assert heard.statuses() == [(room, user, "online")]
    assert presence_read([user])[user]["status"] == "online"


async def test_someone_whose_sockets_lapsed_before_any_sweep_is_announced_online_when_back(processes, rooms, listen):
    user, room = new_user(), new_user()
    rooms[user] = [room]
    heard = listen(room)
    dead, alive = processes(2)
    await dead.open(user, [room])
    dead.kill()
    redis_client().zadd(LIVE, {user: 1})  # its sockets lapsed long ago, and no sweep has come by yet
    assert presence_read([user])[user]["status"] == "offline"
    await alive.open(user, [room])
    assert heard.statuses() == [(room, user, "online"), (room, user, "online")], "others read them offline meanwhile"


async def test_a_stopping_server_announces_nothing_and_the_sweep_settles_it(processes, listen, make_user, make_room):
    user, room = await member(make_user, make_room)
    heard = listen(room)
    stopping, other = processes(2)
    socket_id = await stopping.open(user, [room])
    heard.statuses()
    await stopping.registry.unregister(socket_id=socket_id)
    await stopping.presence.disconnected(user_id=user, socket_id=socket_id, stopping=True)
    assert heard.statuses() == [], "the client reconnects elsewhere within seconds"
    await asyncio.sleep(1.0)
    await other.presence.sweep()
    assert heard.statuses() == [(room, user, "offline")]


def test_each_socket_passes_one_copy_of_a_change_and_nothing_older():
    seen: dict[int, int] = {}
    assert is_fresh(seen, {"user": 7, "v": 10})
    assert not is_fresh(seen, {"user": 7, "v": 10}), "the same change through another room"
    assert not is_fresh(seen, {"user": 7, "v": 9})
    assert is_fresh(seen, {"user": 8, "v": 1})
    assert is_fresh(seen, {"user": 7, "v": 11})


def test_someone_never_seen_reads_offline_with_no_last_seen():
    user = new_user()
    assert presence_read([user]) == {user: {"status": "offline", "last_seen": None}}
    assert presence_read([]) == {}


def test_iso_times_read_like_the_rest_api():
    assert presence.iso(0) is None
    assert presence.iso(1_700_000_000_123) == "2023-11-14T22:13:20.123000Z"
