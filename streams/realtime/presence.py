"""Presence: whether each user is online, away or offline, across every server process.

Kept in Redis, next to the socket registry of :mod:`streams.realtime.limits` (each user's open
sockets in a sorted set scored by when they lapse, pushed forward by the process holding them):

- ``pr:<user>``, a hash: ``s`` the status, ``a`` the last activity (ms; for an offline user when
  their last socket went), ``v`` the version of the last change, ``n`` the username. Kept for
  KEEP_S after the last write, so "last seen" outlives a session by that long.
- ``pr:live``, a sorted set: each user who has a socket somewhere, scored by when the newest of
  their sockets lapses. A process that was killed leaves its users here with a score in the past;
  the sweep of any other process turns them offline.

Every change is decided by a Lua script that compares and sets the status atomically, so several
processes holding one user's sockets (or sweeping the same lapsed user) announce it once. A
change is published as ``presence.updated`` to the user's room groups, where only the sockets of
members are (the hub and the socket's own room set see to that); the same frame reaches a
member through each room both share, and the control's version lets each socket keep one.

Activity (a frame that shows a person at the keyboard) costs nothing on the frame's path: it is
noted in this process's memory and written by the next tick (every CHAT_PRESENCE_SWEEP_S), or at
once, at most once a second per user, when this process last saw the user away. The module knows
nothing of the apps: the sockets give it their users' room ids, and the one reader that needs the
database (the rooms of a user whose process died) is handed in by the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from django.conf import settings
from redis.exceptions import RedisError

from .hub import async_redis, frame, publish_async, redis_address, redis_client, room_group
from .limits import SocketRegistry
from .protocol import OP_PRESENCE

log = logging.getLogger(__name__)

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
STATE_PREFIX = "pr:"
LIVE = "pr:live"
KEEP_S = 30 * 24 * 3600  # how long "last seen" is remembered after the last change
SWEEP_BATCH = 500  # lapsed users handled per script call
URGENT_INTERVAL_S = 1.0  # at most one immediate write per user and process when it comes back
CALL_TIMEOUT_S = 2.0  # the longest a presence call may take (as for the limits)

RoomsOf = Callable[..., Awaitable[dict[int, list[int]]]]  # (*, user_ids) -> {user: room ids}

# A socket opened. KEYS state, live; ARGV user, username, socket ttl ms, keep ms.
# Online (announced) unless the user has a socket elsewhere already: a status left "online" by
# sockets that lapsed since (nobody swept them yet) counts as offline, as reads show it.
# Returns {version of the change or 0, status, last activity}.
_CONNECT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lapses = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
redis.call('ZADD', KEYS[2], 'GT', now + tonumber(ARGV[3]), ARGV[1])
local st = redis.call('HMGET', KEYS[1], 's', 'a', 'v')
local changed = 0
local s, a = st[1], tonumber(st[2]) or now
if (s ~= 'online' and s ~= 'away') or not lapses or lapses <= now then
  changed = math.max((tonumber(st[3]) or 0) + 1, now)
  s, a = 'online', now
  redis.call('HSET', KEYS[1], 's', s, 'a', a, 'v', changed)
end
redis.call('HSET', KEYS[1], 'n', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {changed, s, a}
"""

# A socket closed. KEYS state, the user's socket set, live; ARGV user, socket id, keep ms.
# Offline only when no socket of the user is left on any server. Returns {version or 0, last seen}.
_DISCONNECT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') > 0 then return {0, 0} end
redis.call('ZREM', KEYS[3], ARGV[1])
local st = redis.call('HMGET', KEYS[1], 's', 'v')
if st[1] ~= 'online' and st[1] ~= 'away' then return {0, 0} end
local v = math.max((tonumber(st[2]) or 0) + 1, now)
redis.call('HSET', KEYS[1], 's', 'offline', 'a', now, 'v', v)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {v, now}
"""

# A process's users, each tick. KEYS live, then per user: state, socket set. ARGV away ms,
# keep ms, then per user: id, ms since their last activity here (-1: none since the last tick).
# Per user {status, version of a change or 0, last activity}; users with no live socket are left
# to the sweep ({"", 0, 0}).
_TICK = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local away = tonumber(ARGV[1])
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local state, socks = KEYS[2 * i], KEYS[2 * i + 1]
  local user, age = ARGV[1 + 2 * i], tonumber(ARGV[2 + 2 * i])
  local top = redis.call('ZRANGE', socks, -1, -1, 'WITHSCORES')
  local lapses = tonumber(top[2])
  if lapses and lapses > now then
    redis.call('ZADD', KEYS[1], 'GT', lapses, user)
    local st = redis.call('HMGET', state, 's', 'a', 'v')
    local a = tonumber(st[2]) or now
    if age >= 0 then a = math.max(a, now - age) end
    local want = 'online'
    if now - a >= away then want = 'away' end
    local changed = 0
    if want ~= st[1] then
      changed = math.max((tonumber(st[3]) or 0) + 1, now)
      redis.call('HSET', state, 's', want, 'a', a, 'v', changed)
    elseif age >= 0 then
      redis.call('HSET', state, 'a', a)
    end
    redis.call('PEXPIRE', state, ARGV[2])
    out[i] = {want, changed, a}
  else
    out[i] = {'', 0, 0}
  end
end
return out
"""

# Users whose sockets all lapsed (their process died). KEYS live, then per user: state, socket
# set. ARGV socket ttl ms, keep ms, then the user ids. Returns {user, version, last seen, username}
# for each one turned offline here; a user whose sockets came back is scored again.
_SWEEP = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local state, socks, user = KEYS[2 * i], KEYS[2 * i + 1], ARGV[2 + i]
  local score = tonumber(redis.call('ZSCORE', KEYS[1], user))
  if score and score <= now then
    local top = redis.call('ZRANGE', socks, -1, -1, 'WITHSCORES')
    local lapses = tonumber(top[2])
    if lapses and lapses > now then
      redis.call('ZADD', KEYS[1], lapses, user)
    else
      redis.call('ZREM', KEYS[1], user)
      local st = redis.call('HMGET', state, 's', 'a', 'v', 'n')
      if st[1] == 'online' or st[1] == 'away' then
        local seen = math.max(tonumber(st[2]) or 0, score - ttl)
        local v = math.max((tonumber(st[3]) or 0) + 1, now)
        redis.call('HSET', state, 's', 'offline', 'a', seen, 'v', v)
        redis.call('PEXPIRE', state, ARGV[2])
        table.insert(out, {user, v, seen, st[4] or ''})
      end
    end
  end
end
return out
"""


def state_key(user_id: int) -> str:
    return f"{STATE_PREFIX}{user_id}"


def iso(ms) -> str | None:
    """An instant in ms since the epoch as ISO 8601 (what the REST API writes), or None."""
    ms = int(ms or 0)
    if ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def update_frame(*, user_id: int, username: str, status: str, last_seen_ms) -> str:
    """The ``presence.updated`` frame, serialised once for every room it goes to."""
    user = {"id": user_id, "username": username}
    return frame("presence.updated", user=user, status=status, last_seen=iso(last_seen_ms))


_scripts: dict[tuple[int, str], object] = {}


def _script(source: str):
    # One Script object per source and client: EVALSHA, and EVAL only after a NOSCRIPT.
    client = async_redis()
    key = (id(client), source)
    if key not in _scripts:
        _scripts[key] = client.register_script(source)
    return _scripts[key]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Presence:
    """This process's part: its sockets' users, their activity, and the tick that writes it."""

    def __init__(self) -> None:
        self.sockets: dict[int, dict[str, set[int]]] = {}  # user -> socket id -> its live room set
        self.names: dict[int, str] = {}
        self.activity: dict[int, float] = {}  # user -> monotonic time of activity not yet written
        self.known: dict[int, str] = {}  # user -> the status this process last read
        self.urgent: dict[int, float] = {}  # user -> when an immediate write last went
        self.rooms_of: RoomsOf | None = None
        self.ticker: asyncio.Task | None = None
        self.writes: set[asyncio.Task] = set()  # immediate writes in flight (the loop keeps weak references only)

    # -- the sockets' side (the consumer) ------------------------------------------------------------
    async def connected(self, *, user_id: int, username: str, socket_id: str, rooms: set[int]) -> None:
        """A socket of the user opened here: online if it is their first anywhere."""
        self.sockets.setdefault(user_id, {})[socket_id] = rooms  # the socket's own set: kept current
        self.names[user_id] = username
        self._ensure_ticker()
        ttl_ms = int(settings.CHAT_SOCKET_TTL_S * 1000)
        try:
            changed, status, last = await _bounded(
                _script(_CONNECT)(keys=[state_key(user_id), LIVE], args=[user_id, username, ttl_ms, KEEP_S * 1000])
            )
        except (RedisError, OSError, TimeoutError) as exc:
            _warn("connect", exc)
            return
        self.known[user_id] = _text(status)
        if int(changed):
            await self._announce(user_id, username, ONLINE, last, int(changed), rooms)

    async def disconnected(self, *, user_id: int, socket_id: str, stopping: bool = False) -> None:
        """A socket of the user closed here: offline once none is left on any server.

        A stopping server announces nothing: its clients reconnect to another one within seconds
        (no offline-online flicker for everyone at each deploy); those who do not are turned
        offline by the sweep once their sockets lapse (CHAT_SOCKET_TTL_S).
        """
        mine = self.sockets.get(user_id, {})
        rooms = set().union(*mine.values()) if mine else set()
        username = self.names.get(user_id, "")
        mine.pop(socket_id, None)
        if not mine:
            self._forget(user_id)
        if stopping:
            return
        try:
            changed, last = await _bounded(
                _script(_DISCONNECT)(
                    keys=[state_key(user_id), SocketRegistry._key(user_id), LIVE],
                    args=[user_id, socket_id, KEEP_S * 1000],
                )
            )
        except (RedisError, OSError, TimeoutError) as exc:
            _warn("disconnect", exc)  # the sweep turns them offline once their sockets lapse
            return
        if int(changed):
            await self._announce(user_id, username, OFFLINE, last, int(changed), rooms)

    def active(self, user_id: int) -> None:
        """The user did something here (a frame of theirs): noted in memory, written by the tick.

        When this process last saw them away, written at once (at most once a second per user),
        so coming back shows within a round trip rather than a tick.
        """
        if user_id not in self.sockets:
            return
        now = time.monotonic()
        self.activity[user_id] = now
        if self.known.get(user_id) == ONLINE or now - self.urgent.get(user_id, float("-inf")) < URGENT_INTERVAL_S:
            return
        self.urgent[user_id] = now
        task = asyncio.get_running_loop().create_task(self._tick_users([user_id]))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)

    def _forget(self, user_id: int) -> None:
        for table in (self.sockets, self.names, self.activity, self.known, self.urgent):
            table.pop(user_id, None)

    # -- the tick ---------------------------------------------------------------------------------
    def _ensure_ticker(self) -> None:
        if self.ticker is None or self.ticker.done():
            self.ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.CHAT_PRESENCE_SWEEP_S)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                _warn("tick", exc)
            except Exception:
                log.exception("presence tick failed")

    async def tick(self) -> None:
        """Write this process's users' activity and turn them away or back online; sweep lapsed users."""
        users = list(self.sockets)
        for start in range(0, len(users), SWEEP_BATCH):
            await self._tick_users(users[start : start + SWEEP_BATCH])
        await self.sweep()

    async def _tick_users(self, users: list[int]) -> None:
        users = [u for u in users if u in self.sockets]
        if not users:
            return
        now = time.monotonic()
        keys, args = [LIVE], [int(settings.CHAT_AWAY_AFTER_S * 1000), KEEP_S * 1000]
        for user_id in users:
            keys += [state_key(user_id), SocketRegistry._key(user_id)]
            seen = self.activity.pop(user_id, None)
            args += [user_id, -1 if seen is None else int((now - seen) * 1000)]
        try:
            answers = await _bounded(_script(_TICK)(keys=keys, args=args))
        except (RedisError, OSError, TimeoutError) as exc:
            _warn("tick", exc)
            return
        for user_id, (status, changed, last) in zip(users, answers, strict=True):
            status = _text(status)
            if not status or user_id not in self.sockets:
                continue
            self.known[user_id] = status
            if int(changed):
                rooms = set().union(*self.sockets[user_id].values())
                await self._announce(user_id, self.names.get(user_id, ""), status, last, int(changed), rooms)

    async def sweep(self) -> None:
        """Turn offline the users whose sockets all lapsed (a killed process's), once, whoever sweeps."""
        now_ms = int(time.time() * 1000)
        lapsed = await _bounded(async_redis().zrangebyscore(LIVE, "-inf", now_ms, start=0, num=SWEEP_BATCH))
        if not lapsed:
            return
        users = [int(u) for u in lapsed]
        keys = [LIVE]
        for user_id in users:
            keys += [state_key(user_id), SocketRegistry._key(user_id)]
        ttl_ms = int(settings.CHAT_SOCKET_TTL_S * 1000)
        gone = await _bounded(_script(_SWEEP)(keys=keys, args=[ttl_ms, KEEP_S * 1000, *users]))
        if not gone or self.rooms_of is None:
            return
        rooms = await self.rooms_of(user_ids=[int(user) for user, *_ in gone])
        for user, version, seen, name in gone:
            user_id = int(user)
            await self._announce(user_id, _text(name), OFFLINE, seen, int(version), rooms.get(user_id, ()))

    async def _announce(self, user_id: int, username: str, status: str, last_ms, version: int, rooms) -> None:
        text = update_frame(user_id=user_id, username=username, status=status, last_seen_ms=last_ms)
        control = {"op": OP_PRESENCE, "user": user_id, "v": version}
        try:
            await _bounded(publish_async((room_group(room_id), text, control) for room_id in sorted(rooms)))
        except (RedisError, OSError, TimeoutError) as exc:
            _warn("publish", exc)


async def _bounded(call):
    """``await call`` for CALL_TIMEOUT_S at most: a socket's connect or close must not hang on a
    paused Redis (presence is skipped then, and settles by the sockets' expiry and the sweep)."""
    return await asyncio.wait_for(call, CALL_TIMEOUT_S)


_warned: dict[str, float] = {}


def _warn(what: str, exc: Exception) -> None:
    # Once a minute per kind: while Redis is away every socket's connect and close would say it.
    now = time.monotonic()
    if now - _warned.get(what, float("-inf")) > 60:
        _warned[what] = now
        log.warning("presence %s skipped: Redis at %s: %s", what, redis_address(), exc or type(exc).__name__)


_tracker: Presence | None = None


def tracker(*, rooms_of: RoomsOf | None = None) -> Presence:
    """The process's :class:`Presence`; ``rooms_of(user_ids=)`` reads users' room ids (for the sweep)."""
    global _tracker
    if _tracker is None:
        _tracker = Presence()
    if rooms_of is not None:
        _tracker.rooms_of = rooms_of
    return _tracker


def is_fresh(seen: dict[int, int], control: dict) -> bool:
    """Whether a socket that has ``seen`` (user -> version) should pass this change on; records it.

    A change reaches a socket once per room it shares with the user: only the first copy counts.
    """
    user, version = control.get("user"), control.get("v", 0)
    if seen.get(user, -1) >= version:
        return False
    seen[user] = version
    return True


# -- reads (REST, pages: sync code) ---------------------------------------------------------------
def presence_read(user_ids: Iterable[int]) -> dict[int, dict]:
    """``{user_id: {status, last_seen}}`` for these users, in one Redis round trip.

    A user whose sockets all lapsed reads offline even before a sweep said so. Callers show it only
    to users who share a room with them. While Redis is away everyone reads offline, last seen
    unknown (said in the log).
    """
    user_ids = list(dict.fromkeys(user_ids))
    if not user_ids:
        return {}
    try:
        pipe = redis_client().pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hmget(state_key(user_id), "s", "a")
            pipe.zscore(LIVE, user_id)
        answers = pipe.execute()
    except RedisError as exc:
        _warn("read", exc)
        return {user_id: {"status": OFFLINE, "last_seen": None} for user_id in user_ids}
    now_ms = time.time() * 1000
    ttl_ms = settings.CHAT_SOCKET_TTL_S * 1000
    out = {}
    for index, user_id in enumerate(user_ids):
        (status, last), lapses = answers[2 * index], answers[2 * index + 1]
        status = _text(status) if status else OFFLINE
        last = float(last or 0)
        if status in (ONLINE, AWAY) and (lapses is None or lapses <= now_ms):
            status = OFFLINE
            if lapses is not None:
                last = max(last, lapses - ttl_ms)
        out[user_id] = {"status": status, "last_seen": iso(last)}
    return out
