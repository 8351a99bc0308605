"""Each consumer process's batch counters, kept in Redis for ``/metrics`` and the admin.

The consumers are processes of their own; the web process that answers a scrape cannot see
their memory. So each :class:`~streams.pipeline.worker.Worker` keeps its counters here and writes
them to a small Redis hash per group and process (``HSET`` + ``EXPIRE`` + ``ZADD`` in one round
trip), at most once a second while it works and every ``HEARTBEAT_S`` while idle. The hash lapses
``TTL_S`` after its process stopped writing, so a stopped consumer drops out of the figures.
Redis being down costs a batch nothing: the write is skipped (and retried after ``BACKOFF_S``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque

from django.conf import settings

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0  # while batches come: at most one write a second
HEARTBEAT_S = 10.0  # while idle: the hash stays alive and the rate falls to 0
TTL_S = 60.0
WINDOW_S = 60.0  # the rate and the mean batch size are over this last stretch
BACKOFF_S = 30.0  # after Redis failed, no write for this long
REDIS_TIMEOUT_S = 0.5

FIELDS_INT = ("pid", "batches_total", "records_total", "last_batch_records", "window_batches", "window_records")
FIELDS_FLOAT = ("started_at", "written_at", "last_batch_at", "busy_seconds_total", "window_s")


def index_key() -> str:
    """The sorted set of the processes' hashes (by last write), one per topic prefix."""
    return f"chat:pipeline:{settings.KAFKA_TOPIC_PREFIX}consumers"


class BatchStats:
    """One consumer process's counters: batches, records, busy time, and the last minute's rate."""

    def __init__(self, group: str) -> None:
        self.group = group  # the group's full name on the broker
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.key = f"chat:pipeline:consumer:{group}:{self.host}:{self.pid}"
        self.started_at = time.time()
        self.batches = self.records = self.last_records = 0
        self.busy = 0.0
        self.last_at = None
        # (monotonic time, records) of the last WINDOW_S, with their running sums.
        self.window: deque[tuple[float, int]] = deque()
        self.window_records = 0
        self.written = 0.0  # monotonic time of the last write (0: never)
        self.dirty = False  # batches counted since that write
        self.paused_until = 0.0
        self.client = None

    def batch(self, records: int, seconds: float) -> None:
        """Count a batch of ``records`` that took ``seconds`` to process and commit."""
        now = time.monotonic()
        self.batches += 1
        self.records += records
        self.last_records = records
        self.busy += seconds
        self.last_at = time.time()
        self.window.append((now, records))
        self.window_records += records
        self.dirty = True
        if now - self.written >= FLUSH_EVERY_S:
            self.flush(now)

    def idle(self) -> None:
        """Called when a poll brought nothing: write what the last batches left unwritten, and keep
        the hash alive (and the rate honest) now and then."""
        now = time.monotonic()
        if now - self.written >= (FLUSH_EVERY_S if self.dirty else HEARTBEAT_S):
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Write the counters to Redis; never raises (a down Redis pauses writing for ``BACKOFF_S``)."""
        now = time.monotonic() if now is None else now
        self.written = now
        self.dirty = False
        if now < self.paused_until:
            return
        while self.window and self.window[0][0] < now - WINDOW_S:
            self.window_records -= self.window.popleft()[1]
        wall = time.time()
        fields = {
            "group": self.group,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "written_at": wall,
            "batches_total": self.batches,
            "records_total": self.records,
            "busy_seconds_total": round(self.busy, 6),
            "last_batch_records": self.last_records,
            "last_batch_at": self.last_at or "",
            "window_s": round(min(WINDOW_S, wall - self.started_at), 3),
            "window_batches": len(self.window),
            "window_records": self.window_records,
        }
        try:
            if self.client is None:
                import redis

                self.client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
                )
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(self.key, mapping=fields)
            pipe.expire(self.key, int(TTL_S))
            pipe.zadd(index_key(), {self.key: wall})
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the figures are a courtesy; the batch goes on
            self.paused_until = now + BACKOFF_S
            log.warning("%s: batch figures not written to Redis (%s); next try in %.0f s", self.group, exc, BACKOFF_S)

    def close(self) -> None:
        """Take this process's figures away at a clean stop (a killed one's lapse after ``TTL_S``)."""
        if self.client is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(self.key)
            pipe.zrem(index_key(), self.key)
            pipe.execute()
        except Exception:  # noqa: BLE001 - they lapse anyway
            pass
        finally:
            self.client.close()


def consumer_stats(client) -> list[dict]:
    """Every live consumer process's counters (``client``: a Redis client), by group then host and pid.

    Each entry holds the fields written by :meth:`BatchStats.flush` plus ``rate`` (records per
    second over the last ``window_s``) and ``mean_batch`` (records per batch over the same).
    """
    now = time.time()
    key = index_key()
    client.zremrangebyscore(key, "-inf", now - TTL_S)
    names = client.zrange(key, 0, -1)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    stats = []
    for raw in pipe.execute() if names else []:
        if not raw:
            continue  # lapsed between the two reads
        entry = {k.decode(): v.decode() for k, v in raw.items()}
        for name in FIELDS_INT:
            entry[name] = int(entry.get(name) or 0)
        for name in FIELDS_FLOAT:
            entry[name] = float(entry.get(name) or 0)
        # A figure written a while ago by an idle process says nothing of the time since: no rate then.
        window = entry["window_s"] + max(0.0, now - entry["written_at"])
        entry["rate"] = entry["window_records"] / window if window > 0 else 0.0
        entry["mean_batch"] = entry["window_records"] / entry["window_batches"] if entry["window_batches"] else 0.0
        stats.append(entry)
    return sorted(stats, key=lambda e: (e["group"], e["host"], e["pid"]))
