"""Per-user limits shared by every socket and process of a user, kept in Redis.

A limit kept in one process's memory is multiplied by the number of sockets and processes a
user opens (one user with 200 sockets sent 200 times the typing frames), and a map of users
kept in memory grows with every user the process ever saw. Here each limit is one Redis key per
user (or user and room) that expires by itself, updated by a script so that concurrent sockets
on several processes cannot both take the last token.

- :func:`take`: a token bucket (sends, room entries and syncs, read positions);
- :func:`once_per`: at most one event per interval (typing, per user and room);
- :class:`SocketRegistry`: the open sockets of each user, capped by CHAT_MAX_SOCKETS_PER_USER.
  Each entry expires unless its process refreshes it, so a crashed process frees its slots.

Every call goes through the process's bounded Redis pool (``streams.realtime.hub.async_redis``):
a burst of frames waits for a connection instead of opening one each.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from .hub import async_redis, redis_address

log = logging.getLogger(__name__)

PREFIX = "lim:"

# KEYS[1] bucket; ARGV rate (tokens/s), burst. Returns {1 or 0, ms until the next token}.
# Redis's own clock, so processes on several hosts agree on the time.
_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate / 1000)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait = 0
if ok == 0 then wait = math.ceil((1 - tokens) / rate * 1000) end
return {ok, wait}
"""

# KEYS[1] the user's socket set; ARGV socket id, limit, ttl ms. 1 when registered, else 0.
_REGISTER = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: socket sets; ARGV[1] ttl ms, then one socket id per key. Pushes each expiry forward, and
# puts back entries that lapsed or that a Redis restart lost: these sockets are open.
_REFRESH = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`take`: allowed, or refused with the seconds until it would be."""

    allowed: bool
    retry_after: float = 0.0


_last_warning = 0.0


def _redis_down(exc: Exception) -> None:
    """Limits fail open while Redis is away (a chat outage is worse than a burst), said once a minute."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 60:
        _last_warning = now
        log.warning("per-user limits are not enforced: Redis at %s is unreachable (%s)", redis_address(), exc)


_scripts: dict[tuple[int, str], object] = {}


def _script(client, source: str):
    # One Script object per source and client: it sends EVALSHA, and EVAL only after a NOSCRIPT
    # (Redis restarted and lost its script cache).
    key = (id(client), source)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = client.register_script(source)
    return script


def _client():
    return async_redis()


async def take(name: str, *, rate: float, burst: int) -> Verdict:
    """Take one token from the bucket ``name`` (e.g. ``send:7``); refused when it is empty."""
    if not settings.RATE_LIMITS_ENABLED:
        return Verdict(True)
    answer = await _guarded(lambda: _script(_client(), _BUCKET)(keys=[PREFIX + name], args=[rate, burst]))
    if answer is None:
        return Verdict(True)
    ok, wait_ms = answer
    return Verdict(bool(ok), int(wait_ms) / 1000)


async def once_per(name: str, *, interval_s: float) -> bool:
    """True for the first call per ``interval_s`` seconds for ``name``, across every process."""
    if not settings.RATE_LIMITS_ENABLED:
        return True
    px = max(1, int(interval_s * 1000))
    answer = await _guarded(lambda: _client().set(PREFIX + name, b"1", nx=True, px=px))
    if answer is None and _redis_away():
        return True  # Redis away: fail open
    return bool(answer)  # SET NX: True when set now, None when someone set it this interval


# A limit is a Redis round trip on every frame it guards: it may cost the frame this long at most
# (waiting for a pooled connection included: a burst of 200 connecting sockets queues briefly).
CALL_TIMEOUT_S = 2.0
# After a failure, limits fail open without asking Redis for this long, so a paused or cut-off
# Redis costs every frame nothing rather than a timeout each.
BACKOFF_S = 5.0
_skip_until = 0.0


def _redis_away() -> bool:
    return time.monotonic() < _skip_until


async def _guarded(call):
    """``await call()`` within CALL_TIMEOUT_S; on failure None, and Redis is left alone for
    BACKOFF_S (limits fail open: see ``_redis_down``)."""
    global _skip_until
    if time.monotonic() < _skip_until:
        return None
    try:
        return await asyncio.wait_for(call(), CALL_TIMEOUT_S)
    except (RedisError, TimeoutError, OSError) as exc:
        _skip_until = time.monotonic() + BACKOFF_S
        _redis_down(exc)
        return None


UNCAPPED = 2**31 - 1  # the cap the registry applies when there is none


class SocketRegistry:
    """The user's open sockets, across processes: at most CHAT_MAX_SOCKETS_PER_USER at once.

    Each socket is a member of the user's sorted set, scored by when it expires. This process
    pushes the expiry of its own sockets forward every third of the time to live, so the set
    only holds sockets that are open now, even after a process was killed.
    """

    def __init__(self) -> None:
        self.process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.local: dict[str, str] = {}  # socket id -> its user's key
        self.refresher: asyncio.Task | None = None

    @staticmethod
    def _key(user_id: int) -> str:
        return f"{PREFIX}sockets:{user_id}"

    def new_id(self) -> str:
        return f"{self.process}-{uuid.uuid4().hex[:12]}"

    async def register(self, *, user_id: int, socket_id: str) -> bool:
        """Count a new socket of the user; False when the user has the most allowed open.

        Without a cap (limits off, or CHAT_MAX_SOCKETS_PER_USER 0) the socket is still kept here:
        presence (``streams.realtime.presence``) and push (``users_online``) read the set.
        """
        limit = settings.CHAT_MAX_SOCKETS_PER_USER
        if not settings.RATE_LIMITS_ENABLED or limit <= 0:
            limit = UNCAPPED
        ttl_ms = int(settings.CHAT_SOCKET_TTL_S * 1000)
        key = self._key(user_id)
        ok = await _guarded(lambda: _script(_client(), _REGISTER)(keys=[key], args=[socket_id, limit, ttl_ms]))
        if ok is None:  # Redis away: let the socket in; the refresher counts it once Redis is back
            self.local[socket_id] = key
            self._ensure_refresher()
            return True
        if ok:
            self.local[socket_id] = self._key(user_id)
            self._ensure_refresher()
        return bool(ok)

    async def unregister(self, *, socket_id: str) -> None:
        key = self.local.pop(socket_id, None)
        if key is None:
            return
        try:
            await _client().zrem(key, socket_id)
        except Exception:  # noqa: BLE001 - the entry expires by itself
            log.warning("could not free a socket slot in Redis; it expires in %s s", settings.CHAT_SOCKET_TTL_S)

    def _ensure_refresher(self) -> None:
        if self.refresher is None or self.refresher.done():
            self.refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        ttl_ms = int(settings.CHAT_SOCKET_TTL_S * 1000)
        while True:
            await asyncio.sleep(settings.CHAT_SOCKET_TTL_S / 3)
            if not self.local:
                continue
            items = list(self.local.items())
            try:
                client = _client()
                for start in range(0, len(items), 500):
                    chunk = items[start : start + 500]
                    await _script(client, _REFRESH)(
                        keys=[key for _, key in chunk], args=[ttl_ms, *(socket_id for socket_id, _ in chunk)]
                    )
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis away: entries may lapse; sockets stay open
                log.warning("could not refresh %d socket slots in Redis", len(items))


_registry: SocketRegistry | None = None


def socket_registry() -> SocketRegistry:
    global _registry
    if _registry is None:
        _registry = SocketRegistry()
    return _registry


def users_online(user_ids: list[int]) -> set[int]:
    """Which of the users have a socket open on any server now (sync callers: Celery tasks).

    Read from the socket registry, whose entries lapse a TTL after their socket's last refresh.
    When Redis cannot be reached nobody counts as online: a push too many beats a missed one.
    """
    from .hub import redis_client

    if not user_ids:
        return set()
    now_ms = int(time.time() * 1000)
    try:
        pipe = redis_client().pipeline(transaction=False)
        for user_id in user_ids:
            pipe.zcount(SocketRegistry._key(user_id), now_ms, "+inf")
        counts = pipe.execute()
    except RedisError as exc:
        log.warning("who is online is unknown (Redis at %s: %s); pushing to everyone", redis_address(), exc)
        return set()
    return {user_id for user_id, count in zip(user_ids, counts, strict=True) if count}
