"""The one consumer loop every Kafka consumer group runs on.

A worker subclass names its group and topics and implements ``consume(records)``, which gets a
batch of decoded envelopes and does its (idempotent) database work. The loop commits the
batch's offsets only after ``consume`` returned, so a crash replays the batch and idempotency
makes the replay harmless. Tests call ``consume()`` directly.

Failures (see ``Worker.process``):
- a record that cannot be decoded goes to the dead-letter topic with the reason;
- a transient fault (database or broker unreachable, deadlock, serialization failure) retries
  the batch in place until it passes; while a database the worker writes to is down, its
  partitions are paused (the group keeps the member) and nothing is committed or skipped;
- any other failure splits the batch to find the record at fault: a record that fails alone
  for a reason that will not change (bad data, ``PermanentError``) is dead-lettered at once and
  the rest of the batch is processed, so one poison record costs other rooms milliseconds. A
  record that fails alone for an unknown reason is tried a few times first: in place where
  order matters (``retry_topic = None``: persist, backup), else parked on the retry topic
  (re-driven later by a Celery task onto the topic it came from) until ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
import signal
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import close_old_connections

from streams import codec, logs
from streams.runtime import gc_tune

from . import kafka
from .stats import BatchStats

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A record about to be set aside for the same error as the BREAKER_SAME - 1 before it (within
# BREAKER_WINDOW_S) is not: the stream is held instead (a bug or a schema mismatch, not bad data).
BREAKER_SAME = 3
BREAKER_WINDOW_S = 60.0
# How long a worker that follows another group waits before it looks at that group's offsets again.
FOLLOW_WAIT_S = 0.05
FOLLOW_SAY_EVERY_S = 30.0
# How long a batch the followed group has not committed yet is held before it is rewound.
FOLLOW_HOLD_S = 2.0
# The followed group's offsets are read again at least this often, ready batch or not.
FOLLOW_REFRESH_S = 1.0

# How a failure is handled (see Worker.process).
TRANSIENT = "transient"  # retry the batch in place until it passes
SYSTEMIC = "systemic"  # the code and the database disagree: retry in place, loudly
PERMANENT = "permanent"  # the record's own fault: dead-letter it once it is alone
UNKNOWN = "unknown"  # split; alone, a few tries in place, then dead-letter

# SQLSTATE classes of faults that pass: connection (08), transaction rollback: deadlock and
# serialization failure (40), insufficient resources (53), operator intervention: shutdown,
# cancel (57), system error (58); and lock not available (55P03).
_TRANSIENT_SQLSTATES = ("08", "40", "53", "57", "58", "55P03")


class PermanentError(Exception):
    """A record that can never be processed (bad shape, unknown kind): dead-letter it."""


class SystemicError(Exception):
    """The code and the data's schema disagree (no record of its kind can pass): hold the stream."""


class Raw(NamedTuple):
    """One record as fetched: its place and its undecoded bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Record:
    """One Kafka record with its decoded envelope."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict


class Worker(ABC):
    group_id: str = ""
    topics: tuple[str, ...] = (kafka.MESSAGES,)
    # The databases consume() writes to: while one is down the batch waits.
    databases: tuple[str, ...] = ("default",)
    # Where a record that keeps failing is parked; None retries it in place (order matters).
    retry_topic: str | None = kafka.RETRY
    # First pause before an unknown failure of one record is tried again (then doubled).
    retry_backoff_s: float = 0.1
    max_records: int = 500
    # Another group this one trails: a record is processed only once that group has committed
    # it (chat-index reads what chat-persist stored). None: no such wait.
    follows: str | None = None
    # A decoded value is processed when it holds one of these keys, else it is dead-lettered as
    # undecodable (a group that reads another format, such as Debezium's ``op``, names its own).
    envelope_keys: tuple[str, ...] = ("kind",)
    # A null value is a deletion marker (a tombstone, as Debezium writes after a delete) this
    # group may skip, instead of dead-lettering it as undecodable.
    tombstones: bool = False
    # A group nobody waits on as it happens (the search index, the backup): it fetches and writes
    # at most every KAFKA_BACKGROUND_INTERVAL_MS, in fewer and larger batches, instead of every
    # KAFKA_BATCH_INTERVAL_MS, which only the delivery path needs.
    background: bool = False

    def __init__(self) -> None:
        self.running = True
        self.consumer = None
        self.leader = None  # a consumer of the followed group's offsets (see _followed)
        self.follow_said = 0.0
        # The followed group's committed offset per (topic, partition), as last read.
        self.follow_offsets: dict[tuple[str, int], int] = {}
        self.follow_read_at = 0.0
        # (error, when) of the last records set aside, for the breaker (see process()).
        self.set_aside: deque[tuple[str, float]] = deque(maxlen=BREAKER_SAME)

    # -- to implement ----------------------------------------------------------------------------
    @abstractmethod
    def consume(self, records: list[Record]) -> None:
        """Process a batch; must be idempotent. Raise PermanentError for a bad record."""

    # -- the loop --------------------------------------------------------------------------------
    def stop(self, *_args) -> None:
        self.running = False

    def make_consumer(self):
        # librdkafka (confluent-kafka) fetches and decodes on its own threads, outside the GIL:
        # kafka-python's fetcher and record decoding were 40 % of this process's busy time.
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": kafka.topic(self.group_id),
                "client.id": f"{self.group_id}-worker",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": settings.KAFKA_HEARTBEAT_MS,
                "fetch.wait.max.ms": self._interval_ms(settings.KAFKA_FETCH_MAX_WAIT_MS),
                # librdkafka leaves Nagle on: a small request could wait for a delayed ACK.
                "socket.nagle.disable": True,
                "logger": log,
            }
        )
        consumer.subscribe(
            [kafka.topic(name) for name in self.topics], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        return consumer

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.consumer = self.make_consumer()
        # Batch sizes and rates for /metrics and the admin (streams/pipeline/stats.py).
        stats = BatchStats(kafka.topic(self.group_id))
        gc_tune()
        log.info("%s: consuming %s", self.group_id, ", ".join(self.topics))
        try:
            while self.running:
                raws = self.fetch(timeout=0.2)
                if raws and self.follows:
                    raws = self._followed(raws)
                if not raws:
                    stats.idle()
                    continue
                started = time.monotonic()
                self.handle(raws)
                self.commit(raws)
                stats.batch(len(raws), time.monotonic() - started)
                if len(raws) < self.max_records:
                    self._pace(started)
        finally:
            self.consumer.close()
            if self.leader is not None:
                self.leader.close()
            stats.close()
            log.info("%s: stopped", self.group_id)

    def fetch(self, *, timeout: float) -> list[Raw]:
        """The next batch of records (up to ``max_records``); broker errors are logged, not raised."""
        # consume(n, timeout) would wait out its whole timeout for n records: wait for the first
        # one only, then take what is already fetched.
        first = self.consumer.poll(timeout)
        if first is None:
            return []
        raws = []
        for message in [first, *self.consumer.consume(self.max_records - 1, 0)]:
            error = message.error()
            if error is not None:
                # Connection trouble and the like: librdkafka reports it and keeps retrying.
                log.warning("%s: %s", self.group_id, error.str())
                continue
            raws.append(Raw(message.topic(), message.partition(), message.offset(), message.key(), message.value()))
        return raws

    def _followed(self, raws: list[Raw]) -> list[Raw]:
        """The records the followed group has committed; the rest are fetched again later.

        The followed group's offsets are kept as last read, and the broker is asked (one
        OffsetFetch) for a batch that goes past them, or once ``FOLLOW_REFRESH_S`` has passed. A batch that is not ready
        waits here, asking again every ``FOLLOW_WAIT_S``, up to ``FOLLOW_HOLD_S``: the followed
        group is most often a batch interval behind, and holding the records costs nothing where
        rewinding them means fetching them again. Past that (the followed group is down or far
        behind) what is not ready is rewound, and the loop keeps polling (the group keeps us).
        """
        held_since = time.monotonic()
        asked = False
        if held_since - self.follow_read_at >= FOLLOW_REFRESH_S:
            # Read again now and then even when the batch looks ready: a broker that lost its log
            # (the embedded one keeps it in memory) starts the offsets over, lower.
            self._follow_offsets_read(raws)
        while True:
            ready = [raw for raw in raws if raw.offset < self.follow_offsets.get((raw.topic, raw.partition), -1)]
            if len(ready) == len(raws) or not self.running or time.monotonic() - held_since >= FOLLOW_HOLD_S:
                break
            if asked:
                time.sleep(FOLLOW_WAIT_S)
            self._follow_offsets_read(raws)
            asked = True
        if len(ready) < len(raws):
            self._rewind([raw for raw in raws if raw.offset >= self.follow_offsets.get((raw.topic, raw.partition), -1)])
            if not ready:
                now = time.monotonic()
                if now - self.follow_said >= FOLLOW_SAY_EVERY_S:
                    # Otherwise silent: a followed group that is down (or never committed) shows only as lag.
                    log.info("%s: waiting for %s to commit what it reads (%d records held)",
                             self.group_id, self.follows, len(raws))  # fmt: skip
                    self.follow_said = now
        return ready

    def _follow_offsets_read(self, raws: list[Raw]) -> None:
        """Read the followed group's committed offsets for the batch's partitions."""
        from confluent_kafka import Consumer, TopicPartition

        if self.leader is None:
            self.leader = Consumer({
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": kafka.topic(self.follows), "enable.auto.commit": False,
                "socket.nagle.disable": True, "logger": log,
            })  # fmt: skip
        places = sorted({(raw.topic, raw.partition) for raw in raws})
        try:
            answer = self.leader.committed([TopicPartition(t, p) for t, p in places], timeout=10)
        except Exception as exc:  # noqa: BLE001 - the broker's words, logged; the batch waits
            log.warning("%s: offsets of %s unknown (%s); waiting", self.group_id, self.follows, exc)
            return
        self.follow_read_at = time.monotonic()
        for tp in answer:
            self.follow_offsets[(tp.topic, tp.partition)] = tp.offset

    def commit(self, raws: list[Raw]) -> None:
        """Commit the batch's offsets (the next one to read, per partition), synchronously."""
        from confluent_kafka import KafkaException, TopicPartition

        nexts: dict[tuple[str, int], int] = {}
        for raw in raws:
            nexts[(raw.topic, raw.partition)] = max(nexts.get((raw.topic, raw.partition), 0), raw.offset + 1)
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in nexts.items()], asynchronous=False
            )
        except KafkaException as exc:
            # The group moved our partitions on while we worked; their new owner replays the
            # batch and idempotency absorbs it.
            log.warning("%s: offsets not committed: %s", self.group_id, exc.args[0].str())

    def _on_assign(self, _consumer, partitions) -> None:
        # Operators ask "who has what": log what this copy owns after each rebalance.
        log.info("%s: partitions assigned: %s", self.group_id, _names(partitions) or "none")
        self.follow_offsets.clear()  # a rebalance (a broker back, a peer gone): read them afresh

    def _on_revoke(self, _consumer, partitions) -> None:
        if partitions:
            log.info("%s: partitions revoked: %s", self.group_id, _names(partitions))

    def _interval_ms(self, live_ms: int) -> int:
        """``live_ms`` for a group on the delivery path; the longer background interval otherwise."""
        return max(live_ms, settings.KAFKA_BACKGROUND_INTERVAL_MS) if self.background else live_ms

    def _pace(self, started: float) -> None:
        """Let a batch's worth of records gather before the next fetch.

        The broker, the client and the database all pay per request and per transaction, not per
        record: in a steady chat, fetching as soon as anything arrives means batches of one or
        two. Waiting out the rest of a short interval (KAFKA_BATCH_INTERVAL_MS) costs that much
        latency and makes every request carry the interval's records. A worker that is behind
        (its last batch was full) never waits.
        """
        wait = started + self._interval_ms(settings.KAFKA_BATCH_INTERVAL_MS) / 1000 - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def handle(self, raws) -> None:
        """Decode, dead-letter what cannot be decoded, and process the rest of the batch."""
        records = []
        for raw in raws:
            if raw.value is None and self.tombstones:
                continue
            try:
                value = codec.loads(raw.value)
                if not isinstance(value, dict) or value.keys().isdisjoint(self.envelope_keys):
                    raise ValueError("not an envelope")
            except (TypeError, ValueError) as exc:  # TypeError: a null value (a tombstone)
                self.dead_letter(raw.key, raw.value, reason=f"undecodable: {exc}")
                continue
            if value.get("failed_group", self.group_id) != self.group_id:
                # Re-driven from the retry topic for another group: this one applied it already,
                # and applying it again (an old edit over a newer one) would go back in time.
                continue
            records.append(Record(raw.topic, raw.partition, raw.offset, raw.key, value))
        if records:
            self.process(records)

    def process(self, records: list[Record]) -> None:
        """Process a batch (see ``_process``); a lone record's ids name every line it causes.

        Bound for one record only: a record split out of a failing batch, or the only record of
        a quiet moment's batch, is what its retry, error and dead-letter lines are about.
        """
        if len(records) != 1:
            self._process(records)
            return
        value = records[0].value if isinstance(records[0].value, dict) else {}
        token = logs.bind(event_id=value.get("event_id"), client_msg_id=value.get("client_msg_id"))
        try:
            self._process(records)
        finally:
            logs.unbind(token)

    def _process(self, records: list[Record]) -> None:
        """Process a batch, telling a poison record from a passing fault.

        - A transient failure (a database or broker unreachable, a deadlock, a serialization
          failure) or a systemic one (the schema does not match the code) is nobody's record's
          fault: the batch is retried in place with back-off until it passes, never skipped.
        - Any other failure may be one bad record. The batch is split in halves and each half
          processed on its own (in order), so a poison record among 2,000 costs about 2 x 11
          transactions, not minutes of retries, and every other record of the batch is stored.
          A record that fails alone for a reason that will not change (bad data: DataError,
          IntegrityError, PermanentError) is dead-lettered at once; one that fails alone for an
          unknown reason gets ``MAX_ATTEMPTS`` tries first.
        - A breaker: when the records set aside one after another all fail with the same error
          (``BREAKER_SAME`` in a row), it is the code or the database, not the data: the stream
          is held and retried in place, loudly, rather than emptied into the dead-letter topic.
        """
        delay, retry_delay = 0.2, self.retry_backoff_s
        attempts = 0
        while True:
            _refresh_connections()
            try:
                self.consume(records)
                return
            except Exception as exc:
                if not self.running:
                    raise
                kind = classify(exc)
                if kind in (TRANSIENT, SYSTEMIC):
                    self._log_failure(exc, kind, records)
                    if self._database_down():
                        # Nothing can succeed until PostgreSQL is back: wait for it, never skip.
                        self._wait_for_database()
                        delay = 0.2
                        continue
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0 if kind == TRANSIENT else 30.0)
                    continue
                if len(records) > 1:
                    middle = len(records) // 2
                    log.info(
                        "%s: a batch of %d failed (%s); splitting it to find the bad record",
                        self.group_id, len(records), _describe(exc),
                    )  # fmt: skip
                    self.process(records[:middle])
                    self.process(records[middle:])
                    return
                record = records[0]
                reason = _describe(exc)
                if self._looks_systemic(exc):
                    # The same error, record after record: the code or the database is at fault,
                    # not the data. Setting every record aside would empty the stream into the
                    # dead-letter topic; hold it and say so until someone fixes the cause.
                    log.error(
                        "%s: %d records in a row failed with %s; holding the stream until it passes",
                        self.group_id, BREAKER_SAME, reason,
                    )  # fmt: skip
                    time.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                if kind == PERMANENT:
                    self._set_aside(exc)
                    self.dead_letter(record.key, record.value, reason=reason, record=record)
                    return
                # Unknown: a bug that this record triggers, or a fault not classified yet.
                log.exception("%s: record %s/%s failed", self.group_id, record.partition, record.offset)
                if self.retry_topic is not None:
                    self._set_aside(exc)
                    self.send_to_retry(record, reason=reason)
                    return
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    self._set_aside(exc)
                    self.dead_letter(
                        record.key, record.value, reason=f"failed {attempts} times: {reason}", record=record
                    )
                    return
                time.sleep(retry_delay)
                retry_delay = min(retry_delay * 2, 2.0)

    def _set_aside(self, exc: Exception) -> None:
        """Remember a record set aside for ``exc``; an explicit PermanentError (the worker checked
        the data itself) never counts towards the breaker."""
        if not isinstance(exc, PermanentError):
            self.set_aside.append((_describe(exc), time.monotonic()))

    def _looks_systemic(self, exc: Exception) -> bool:
        """Whether the last records set aside all failed like this one, lately (the breaker)."""
        if isinstance(exc, PermanentError) or len(self.set_aside) < BREAKER_SAME - 1:
            return False
        signature, now = _describe(exc), time.monotonic()
        recent = list(self.set_aside)[-(BREAKER_SAME - 1) :]
        return all(sig == signature and now - at < BREAKER_WINDOW_S for sig, at in recent)

    def _log_failure(self, exc: Exception, kind: str, records: list[Record]) -> None:
        # One line per retry, no traceback: a database restart must not bury the log.
        if kind == SYSTEMIC:
            log.error("%s: a batch of %d failed and will be retried: %s", self.group_id, len(records), _describe(exc))
        else:
            log.warning(
                "%s: a batch of %d waits for a transient fault: %s", self.group_id, len(records), _describe(exc)
            )

    def send_to_retry(self, record: Record, *, reason: str) -> None:
        value = dict(record.value)
        attempts = int(value.get("attempts", 0)) + 1
        value.update(attempts=attempts, last_error=reason, failed_group=self.group_id, source_topic=record.topic)
        target = self.retry_topic if attempts < MAX_ATTEMPTS else kafka.DLQ
        kafka.produce(target, key=(record.key or b"").decode() or "none", value=value)

    def dead_letter(self, key: bytes | None, value, *, reason: str, record: Record | None = None) -> None:
        """Park a record that can never be processed on the dead-letter topic, with its reason.

        Operators list them with ``manage.py dead_letters``; ``on_dead_letter`` tells whoever
        is waiting for the record (the sender of a message) that it is gone.
        """
        if isinstance(value, bytes | bytearray):
            value = {"raw": value.decode(errors="replace")}
        payload = {"failed_group": self.group_id, "reason": reason, "record": value, "at": time.time()}
        if record is not None:
            payload.update(topic=record.topic, partition=record.partition, offset=record.offset)
        kafka.produce(kafka.DLQ, key=(key or b"").decode(errors="replace") or "none", value=payload)
        log.error(
            "%s: dead-lettered a %s record of room %s: %s", self.group_id,
            value.get("kind", "?") if isinstance(value, dict) else "?",
            value.get("room", "?") if isinstance(value, dict) else "?", reason,
        )  # fmt: skip
        if isinstance(value, dict):
            try:
                self.on_dead_letter(value, reason)
            except Exception:  # the record is parked; the notice is a courtesy
                log.exception("%s: telling the sender of a dead-lettered record failed", self.group_id)

    def on_dead_letter(self, value: dict, reason: str) -> None:  # noqa: B027 - optional hook
        """Called after a decoded record was dead-lettered; workers tell its sender here."""

    def _database_down(self) -> str | None:
        """The alias of a database this worker writes to that cannot be reached, else None."""
        from django.db import connections

        for alias in self.databases:
            try:
                connections[alias].ensure_connection()
            except Exception:  # noqa: BLE001 - any failure to connect means "down"
                return alias
        return None

    def _wait_for_database(self) -> None:
        # Paused partitions deliver nothing, but consume() keeps this member in the group.
        assigned = self.consumer.assignment() if self.consumer is not None else []
        if assigned:
            self.consumer.pause(assigned)
        delay = 0.5
        try:
            while self.running and (alias := self._database_down()):
                log.warning("%s: PostgreSQL at %s is unreachable; waiting", self.group_id, _db_address(alias))
                if self.consumer is not None:
                    # Partitions assigned by a rebalance meanwhile are not paused: rewind what
                    # they delivered so it is neither lost nor committed unprocessed.
                    self._rewind(self.fetch(timeout=delay))
                else:
                    time.sleep(delay)
                delay = min(delay * 2, 10.0)
                _refresh_connections()
        finally:
            if assigned:
                self.consumer.resume(assigned)

    def _rewind(self, raws: list[Raw]) -> None:
        from confluent_kafka import TopicPartition

        first: dict[tuple[str, int], int] = {}
        for raw in raws:
            first.setdefault((raw.topic, raw.partition), raw.offset)
        for (t, p), offset in first.items():
            self.consumer.seek(TopicPartition(t, p, offset))


def classify(exc: BaseException) -> str:
    """TRANSIENT, SYSTEMIC, PERMANENT or UNKNOWN: what a failure of ``consume`` says of its batch."""
    from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, PermanentError):
        return PERMANENT
    if isinstance(exc, SystemicError):
        return SYSTEMIC
    code = getattr(getattr(exc, "__cause__", None), "pgcode", None) or getattr(exc, "pgcode", None) or ""
    if isinstance(exc, DatabaseError):
        if code.startswith(_TRANSIENT_SQLSTATES) or isinstance(exc, InterfaceError):
            return TRANSIENT
        # 22 data exception, 23 integrity, 54 program limit (a value too long for an index).
        if isinstance(exc, DataError | IntegrityError) or code.startswith(("22", "23", "54")):
            return PERMANENT
        if isinstance(exc, OperationalError):
            return TRANSIENT
        return SYSTEMIC  # ProgrammingError and the like: no record can pass until it is fixed
    if isinstance(
        exc, kafka.KafkaUnavailable | RedisConnectionError | RedisTimeoutError | ConnectionError | TimeoutError
    ):
        return TRANSIENT
    # Anything else, ValueError and TypeError included: bad data and a bug look alike here, so
    # the record gets a few tries before it is set aside (workers raise PermanentError for data
    # they checked and found bad), and the breaker holds the stream if every record fails alike.
    return UNKNOWN


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def _names(partitions) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(partitions, key=lambda p: (p.topic, p.partition)))


def _refresh_connections() -> None:
    """Drop broken or expired connections between attempts (not inside a caller's transaction,
    as in tests that call consume() directly)."""
    from django.db import connection

    if not connection.in_atomic_block:
        close_old_connections()


def _db_address(alias: str) -> str:
    db = settings.DATABASES[alias]
    return f"{db.get('HOST')}:{db.get('PORT')}"
