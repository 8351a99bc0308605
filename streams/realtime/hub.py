"""Real-time fan-out: one Redis publish per group, one pre-serialised frame per process.

Why not the Channels channel layer: it sends one channel-layer message per member and decodes
and re-encodes the event once per member, which on these machines capped a 10-member-room chat
at about 1,500-4,000 deliveries/s. Here a service publishes an event once to the Redis channel
of its group (``room.42``, ``user.7``, ``session.<key>``); every ASGI process holds one Redis
subscription for the groups its local sockets are in, decodes the event once, and writes the
same frame text to each local socket.

On the wire an event is ``<control JSON or empty>\n<frame text or empty>[\n<frame>...]``: the
frames go to clients byte for byte (never re-encoded), in order; the control tells sockets to
change their own state (stop receiving a room, close). JSON text never holds a raw newline, so
the split is exact, and a room's consecutive frames (a stored batch) share one publish.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import Protocol

import redis
from django.conf import settings
from django.db import transaction

from streams import codec

from .protocol import CLOSE_EVENTS_LOST, CLOSE_GOING_AWAY, close_control

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "rt:"
# Application close code: events may have been lost; reconnect and `sync` (daphne only
# allows 1000 and 3000-4999, so not RFC 6455's 1012).


def redis_address() -> str:
    """host:port of Redis, for error messages that name the service."""
    from urllib.parse import urlsplit

    parts = urlsplit(settings.REDIS_URL)
    return f"{parts.hostname}:{parts.port or 6379}"


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    return f"session.{session_key}"


def token_group(token_key: str) -> str:
    # Keyed by a digest, not the token itself, so Redis never sees a credential.
    import hashlib

    return f"token.{hashlib.sha256(token_key.encode()).hexdigest()[:32]}"


def dumps(value) -> str:
    return codec.dumps(value).decode()


def frame(event_type: str, **fields) -> str:
    """Serialise a server -> client frame once; the text is reused for every recipient."""
    return dumps({"type": event_type, **fields})


def _payload(frame_text: str | None, control: dict | None) -> str:
    return (dumps(control) if control else "") + "\n" + (frame_text or "")


def parse_event(payload: bytes) -> tuple[list[str], dict | None]:
    """(frame texts, control) of an event as published on Redis.

    The wire format is ``<control JSON or nothing>\n<frame>[\n<frame>...]``: frames are compact
    JSON, which never holds a raw newline, so several frames for one group can share a publish.
    """
    head, _, body = payload.decode().partition("\n")
    return (body.split("\n") if body else []), (codec.loads(head) if head else None)


# -- publishing (sync code: services, Kafka consumers, Celery) ------------------------------------
_redis = None
_async_redis = None


def _bounded_pool(pool_class, **extra):
    # A blocking pool: a burst waits up to REDIS_POOL_TIMEOUT_S for a free connection instead of
    # failing with MaxConnectionsError (or opening one connection per thread or socket).
    return pool_class.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=settings.REDIS_POOL_TIMEOUT_S,
        socket_connect_timeout=5,
        **extra,
    )


def redis_client():
    """The process's Redis client for sync code, on a pool of at most REDIS_MAX_CONNECTIONS."""
    global _redis
    if _redis is None:
        _redis = redis.Redis(connection_pool=_bounded_pool(redis.BlockingConnectionPool, socket_timeout=5))
    return _redis


def async_redis():
    """The process's asyncio Redis client (the hub, per-user limits), on the same kind of pool.

    The hub's subscription holds one of its connections for as long as it lives, so it has no
    read timeout.
    """
    global _async_redis
    if _async_redis is None:
        import redis.asyncio as aioredis

        _async_redis = aioredis.Redis(connection_pool=_bounded_pool(aioredis.BlockingConnectionPool))
    return _async_redis


Event = tuple[str, str | None, dict | None]  # (group, frame text, control)


# group -> the highest position (a room's seq) whose event was published to it; written in the
# same MULTI/EXEC as the events, so "published" and "marked" cannot disagree after a crash.
ANNOUNCED = "rt:announced"


def publish(events: Iterable[Event], *, announced: dict[str, int] | None = None) -> None:
    """Publish events now, in order, in one round trip; optionally record positions announced."""
    pipe = redis_client().pipeline(transaction=bool(announced))
    count = 0
    for group, payload in _coalesced(events):
        pipe.publish(CHANNEL_PREFIX + group, payload)
        count += 1
    if announced:
        pipe.hset(ANNOUNCED, mapping=announced)
    if count or announced:
        pipe.execute()


def _coalesced(events: Iterable[Event]) -> list[tuple[str, str]]:
    """(group, payload) per publish: consecutive plain frames for one group share one publish.

    A batch of a room's messages costs Redis, the publisher and every subscribing process one
    message instead of one each; controls are never merged, so their order is kept.
    """
    # Parts are joined once per publish: appending to a string would copy it per frame, which
    # grew with the square of a room's batch and took a seventh of persist's time in S3.
    out: list[tuple[str, list[str]]] = []
    merging: str | None = None  # the group of the last payload if it holds frames only
    for group, frame_text, control in events:
        if control is None and frame_text is not None and group == merging:
            out[-1][1].append(frame_text)
            continue
        out.append((group, [_payload(frame_text, control)]))
        merging = group if control is None and frame_text is not None else None
    return [(group, "\n".join(parts)) for group, parts in out]


async def publish_async(events: Iterable[Event]) -> None:
    """Publish events from async code (the sockets' side), in order, in one round trip."""
    pipe = async_redis().pipeline(transaction=False)
    count = 0
    for group, frame_text, control in events:
        pipe.publish(CHANNEL_PREFIX + group, _payload(frame_text, control))
        count += 1
    if count:
        await pipe.execute()


def announced_positions(groups: Iterable[str]) -> dict[str, int]:
    """The positions recorded by ``publish(..., announced=)`` for these groups (0 when none)."""
    groups = list(groups)
    if not groups:
        return {}
    values = redis_client().hmget(ANNOUNCED, groups)
    return {group: int(value or 0) for group, value in zip(groups, values, strict=True)}


def publish_on_commit(
    events: Iterable[Event], *, announced: dict[str, int] | None = None, trace: list[dict] | None = None
) -> None:
    """Publish once the current transaction commits (at once outside a transaction).

    Like Zulip's send_event_on_commit: a client never hears of a change that was rolled back.
    ``trace``: the ids of the messages published (client_msg_id, event_id, room, seq), each
    logged at DEBUG once published, so a message can be followed through the logs.
    """
    events = list(events)
    transaction.on_commit(lambda: _publish_logged(events, announced, trace))


def send_event_on_commit(group: str, event_type: str, **fields) -> None:
    """Send one client frame to a group after commit."""
    publish_on_commit([(group, frame(event_type, **fields), None)])


def _publish_logged(
    events: list[Event], announced: dict[str, int] | None = None, trace: list[dict] | None = None
) -> None:
    # What is stored is stored; clients catch up with `sync`. While Redis is away this fails for
    # every batch: one line each, not a traceback each (a bug still gets its traceback).
    try:
        publish(events, announced=announced)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("real-time publish of %d events failed: Redis at %s: %s", len(events), redis_address(), exc)
        return
    except Exception:
        log.exception("real-time publish of %d events failed", len(events))
        return
    for ids in trace or ():
        log.debug("published message %s (seq %s) to room %s", ids["client_msg_id"], ids["seq"], ids["room"], extra=ids)


# -- receiving (one Hub per ASGI process) -----------------------------------------------------------
class Subscriber(Protocol):
    async def deliver(self, group: str, frame_text: str | None, control: dict | None) -> None: ...


class Hub:
    """The process's single Redis subscription, shared by all its sockets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.groups: dict[str, set[Subscriber]] = {}
        self.client = None
        self.pubsub = None
        self.reader: asyncio.Task | None = None
        self.lock = asyncio.Lock()
        # Sockets whose first subscription is in flight: a reconnect during it cannot have cost
        # them anything, so they are not restarted. `known` forgets closed sockets by itself.
        self.joining: set[Subscriber] = set()
        self.known: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        # Set once the server is stopping: new sockets and sends are refused from then on.
        self.stopping = False

    async def _ensure_started(self) -> None:
        if self.reader is not None and not self.reader.done():
            return
        self.client = async_redis()
        await self._subscribe_all()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _subscribe_all(self) -> None:
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        # The reader needs at least one subscription before listening.
        await self.pubsub.subscribe(CHANNEL_PREFIX + "hub", *(CHANNEL_PREFIX + g for g in self.groups))
        # redis-py reconnects a dropped subscription by itself; whatever was published meanwhile
        # is lost, so treat a reconnect like a lost subscription.
        self.pubsub.connection.register_connect_callback(self._on_reconnect)

    def _on_reconnect(self, connection) -> None:
        # A pooled connection outlives its PubSub: only our current subscription counts.
        if self.pubsub is None or connection is not self.pubsub.connection:
            return
        asyncio.get_running_loop().create_task(self._restart_sockets(self._subscribers()))

    def _subscribers(self) -> set[Subscriber]:
        """Sockets subscribed now, less those still joining (they cannot have missed anything)."""
        return {s for members in self.groups.values() for s in members} - self.joining

    async def _restart_sockets(self, subscribers: set[Subscriber]) -> None:
        """Close every local socket with 4012 ("reconnect") after events may have been lost.

        Events published while the subscription was down are gone, controls included (a removed
        member must stop receiving a room). Clients reconnect, re-read their rooms and `sync`.
        """
        log.warning("real-time hub: Redis subscription was interrupted; restarting %d sockets", len(subscribers))
        for subscriber in subscribers:
            try:
                await subscriber.deliver("hub", None, close_control(CLOSE_EVENTS_LOST))
            except Exception:  # keep closing the others
                log.exception("closing a socket after a Redis interruption failed")

    async def going_away(self, *, wait_s: float | None = None) -> int:
        """Close every local socket with 4503 ("server stopping, reconnect"), for a stopping server.

        Refuses new sockets and sends from now on, then waits (at most ``wait_s``) until the
        clients acknowledged the close, so no socket is cut without a word. Returns how many.
        """
        self.stopping = True
        if wait_s is None:  # long enough for a socket's sends on their way to be answered first
            wait_s = settings.KAFKA_PRODUCE_TIMEOUT_S + 3.0
        subscribers = {s for members in self.groups.values() for s in members}
        for subscriber in subscribers:
            try:
                await subscriber.deliver("hub", None, close_control(CLOSE_GOING_AWAY))
            except Exception:  # keep closing the others
                log.exception("closing a socket of a stopping server failed")
        deadline = asyncio.get_running_loop().time() + wait_s
        while any(not getattr(s, "closed", True) for s in subscribers):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        log.info("server stopping: closed %d sockets (4503, reconnect)", len(subscribers))
        return len(subscribers)

    async def join(self, subscriber: Subscriber, groups: Iterable[str]) -> None:
        async with self.lock:
            await self._ensure_started()
            new, added = [], []
            for group in groups:
                members = self.groups.setdefault(group, set())
                if not members:
                    new.append(CHANNEL_PREFIX + group)
                if subscriber not in members:
                    members.add(subscriber)
                    added.append(group)
            if subscriber not in self.known:
                self.joining.add(subscriber)
            try:
                if new:
                    await self.pubsub.subscribe(*new)
                self.known.add(subscriber)
            except BaseException:
                # Not subscribed: forget the socket here too, or it would stay forever.
                for group in added:
                    self.groups[group].discard(subscriber)
                    if not self.groups[group]:
                        del self.groups[group]
                raise
            finally:
                self.joining.discard(subscriber)

    async def leave(self, subscriber: Subscriber, groups: Iterable[str]) -> None:
        async with self.lock:
            gone = []
            for group in groups:
                members = self.groups.get(group)
                if not members:
                    continue
                members.discard(subscriber)
                if not members:
                    del self.groups[group]
                    gone.append(CHANNEL_PREFIX + group)
            if gone and self.pubsub is not None:
                await self.pubsub.unsubscribe(*gone)

    async def publish(self, group: str, frame_text: str | None, control: dict | None = None) -> None:
        await self._ensure_started()
        await self.client.publish(CHANNEL_PREFIX + group, _payload(frame_text, control))

    async def _read(self) -> None:
        prefix_len = len(CHANNEL_PREFIX)
        while True:
            try:
                async for message in self.pubsub.listen():
                    if message["type"] != "message":
                        continue
                    group = message["channel"].decode()[prefix_len:]
                    members = self.groups.get(group)
                    if not members:
                        continue
                    frames, control = parse_event(message["data"])
                    for subscriber in list(members):
                        try:
                            if not frames:
                                await subscriber.deliver(group, None, control)
                            for index, frame_text in enumerate(frames):
                                await subscriber.deliver(group, frame_text, None if index else control)
                        except Exception:  # one bad socket must not stop the others
                            log.exception("delivery to a socket in %s failed", group)
            except asyncio.CancelledError:
                raise
            except Exception:
                # redis-py reconnects and resubscribes this same PubSub on the next read.
                log.exception("real-time hub lost Redis at %s; resubscribing", self.url)
                affected = self._subscribers()  # only sockets subscribed now can have missed events
                await asyncio.sleep(0.5)
                await self._restart_sockets(affected)


_hub: Hub | None = None


def get_hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = Hub(settings.REDIS_URL)
    return _hub
