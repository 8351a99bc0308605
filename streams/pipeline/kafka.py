"""The Kafka side of the project: topic names, the shared producer, topic creation.

Every chat change is an envelope (versioned JSON) on a topic keyed by room id, so one room's
changes land in one partition and every consumer group sees them in the room's order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from datetime import UTC, datetime

from django.conf import settings

from streams import codec

log = logging.getLogger(__name__)

ENVELOPE_VERSION = 1


class KafkaUnavailable(Exception):
    """The broker did not acknowledge in time; the message was not accepted."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is unavailable: {detail}")


def topic(name: str) -> str:
    """The full topic name for a logical name such as ``chat.messages``."""
    return f"{settings.KAFKA_TOPIC_PREFIX}{name}"


MESSAGES = "chat.messages"
RETRY = "chat.messages.retry"
DLQ = "chat.messages.dlq"
CDC = "chat.cdc"
ALL_TOPICS = (MESSAGES, RETRY, DLQ, CDC)


def envelope(kind: str, **fields) -> dict:
    """A versioned event: ``{"v", "event_id", "kind", "ts", ...fields}``."""
    return {
        "v": ENVELOPE_VERSION,
        "event_id": str(uuid.uuid4()),
        "kind": kind,
        "ts": datetime.now(UTC).isoformat(),
        **fields,
    }


def encode(value: dict) -> bytes:
    return codec.dumps(value)


class Producer:
    """The process-wide producer: librdkafka (confluent-kafka) plus a thread serving its callbacks.

    librdkafka batches, sends and retries on its own threads, outside the GIL; measured here it
    costs a few microseconds of Python per message where kafka-python's producer cost 0.1-1 ms
    inside the web process (bench/README.md). Its delivery reports are served by ``poll()``,
    which one daemon thread calls in a loop; waiters are settled from there: a thread's Event,
    or an event loop's future through one ``call_soon_threadsafe`` per poll and loop.
    """

    def __init__(self) -> None:
        from confluent_kafka import Producer as KafkaProducer

        self.closed = False
        self.producer = KafkaProducer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "client.id": "chat-producer",
                "acks": "all",
                "linger.ms": settings.KAFKA_LINGER_MS,
                # One request in flight per broker: a retried batch cannot overtake a later one,
                # so a room's messages keep their order.
                "max.in.flight.requests.per.connection": 1,
                # The delivery timeout: past it a message is reported failed and not retried.
                "message.timeout.ms": int(settings.KAFKA_PRODUCE_TIMEOUT_S * 1000),
                "reconnect.backoff.max.ms": 1000,
                # librdkafka leaves Nagle on: a small request could wait for a delayed ACK.
                "socket.nagle.disable": True,
                # Java's (and kafka-python's) partitioner: a room maps to the same partition
                # whatever client produced it.
                "partitioner": "murmur2_random",
                # A produce must never create a topic: the broker would pick its partition count
                # (Tansu: 4), and a room's partition would no longer be what KAFKA_PARTITIONS says.
                # After a broker restart the supervisor re-creates them; sends wait till then.
                "allow.auto.create.topics": False,
                "logger": log,
            }
        )
        self.settled: list = []
        self.thread = threading.Thread(target=self._serve, name="kafka-producer", daemon=True)
        self.thread.start()

    def send(self, name: str, key, value: bytes, waiter) -> None:
        """Queue one record; ``waiter`` (a threading.Event or an asyncio future) gets the outcome."""

        def report(error, _message, waiter=waiter):
            self.settled.append((waiter, error))

        try:
            self.producer.produce(topic(name), key=str(key).encode(), value=value, on_delivery=report)
        except BufferError as exc:  # librdkafka's local queue is full: the broker is not keeping up
            raise KafkaUnavailable("the local send queue is full") from exc
        except Exception as exc:  # KafkaException: a configuration or state error
            raise KafkaUnavailable(str(exc)) from exc

    def _serve(self) -> None:
        while not self.closed:
            self.producer.poll(0.05)
            self._settle()

    def _settle(self) -> None:
        if not self.settled:
            return
        settled, self.settled = self.settled, []
        by_loop: dict = {}
        for waiter, error in settled:
            if isinstance(waiter, _Batch):
                waiter.settle(error)
            elif isinstance(waiter, threading.Event):
                waiter.error = error
                waiter.set()
            else:
                by_loop.setdefault(waiter.get_loop(), []).append((waiter, error))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_futures, items)
            except RuntimeError:  # that event loop is closed; nobody waits any more
                pass

    def close(self, timeout: float = 1.0) -> None:
        self.closed = True
        self.thread.join(timeout)
        self.producer.flush(timeout)
        self._settle()


def _settle_futures(items) -> None:
    for future, error in items:
        if not future.done():
            future.set_result(error)


_producer: Producer | None = None
_producer_lock = threading.Lock()


def get_producer() -> Producer:
    """The process-wide producer (created on first use; it connects in the background)."""
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                _producer = Producer()
    return _producer


def reset_producer() -> None:
    """Drop the shared producer (after a fork, or in tests that restart the broker)."""
    global _producer
    with _producer_lock:
        if _producer is not None:
            try:
                _producer.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken producer must not raise
                pass
        _producer = None


def _failure(error) -> KafkaUnavailable:
    return KafkaUnavailable(error.str() if hasattr(error, "str") else str(error))


def produce(name: str, *, key, value: dict) -> None:
    """Send one envelope and wait until the broker acknowledged it (acks=all)."""
    produce_many(name, [(key, encode(value))])


class _Batch:
    """The delivery reports of many records, waited for with one Event (not one per record: that
    was a sixth of change capture's time per record). Settled only by the producer's thread."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.error = None
        self.done = threading.Event()
        if count == 0:
            self.done.set()

    def settle(self, error) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.left -= 1
        if self.left <= 0:
            self.done.set()


def produce_many(name: str, records: list[tuple[object, bytes]]) -> None:
    """Send ``(key, encoded value)`` records and wait until the broker acknowledged every one."""
    producer = get_producer()
    batch = _Batch(len(records))
    for key, value in records:
        producer.send(name, key, value, batch)
    # librdkafka reports every message by its own delivery timeout; the margin covers the poll.
    if not batch.done.wait(settings.KAFKA_PRODUCE_TIMEOUT_S + 1.0):
        raise KafkaUnavailable("no delivery report in time")
    if batch.error is not None:
        raise _failure(batch.error)


class Delivery:
    """The broker's answer for one record queued by :func:`produce_begin`, awaited with ``wait()``."""

    __slots__ = ("done", "deadline")

    def __init__(self, done: asyncio.Future, deadline: float) -> None:
        self.done = done
        self.deadline = deadline

    async def wait(self) -> None:
        """Return once the broker acknowledged the record; raise KafkaUnavailable if it did not."""
        try:
            # From the moment it was queued, not awaited: a caller may await several in turn.
            timeout = max(0.0, self.deadline - self.done.get_loop().time())
            error = await asyncio.wait_for(self.done, timeout)
        except TimeoutError as exc:
            raise KafkaUnavailable("no delivery report in time") from exc
        if error is not None:
            raise _failure(error)


def produce_begin(name: str, *, key, value: dict) -> Delivery:
    """Queue one envelope for the broker without waiting for it (raises KafkaUnavailable if the
    local queue refuses it). Records queued one after another with the same key reach the broker,
    and so the partition, in that order, retries included (one request in flight per broker)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    get_producer().send(name, key, encode(value), done)
    # librdkafka reports every message by its own delivery timeout; the margin covers the poll.
    return Delivery(done, loop.time() + settings.KAFKA_PRODUCE_TIMEOUT_S + 1.0)


async def produce_async(name: str, *, key, value: dict) -> None:
    """Like :func:`produce`, without blocking the event loop while the broker acknowledges."""
    await produce_begin(name, key=key, value=value).wait()


def ensure_topics(partitions: int | None = None) -> list[str]:
    """Create the project's topics where missing; returns the names created.

    Raises KafkaUnavailable when the broker cannot be reached or refuses a topic.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "client.id": "chat-admin"})
    try:
        existing = admin.list_topics(timeout=10).topics
    except KafkaException as exc:
        raise KafkaUnavailable(str(exc)) from exc
    missing = [topic(name) for name in ALL_TOPICS if topic(name) not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(name, partitions or settings.KAFKA_PARTITIONS, settings.KAFKA_REPLICATION) for name in missing],
        operation_timeout=10,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(15)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent creator won
                raise KafkaUnavailable(f"topic {name} could not be created: {exc}") from exc
    return sorted(created, key=missing.index)
