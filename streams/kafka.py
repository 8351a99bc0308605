"""The Kafka side of the project: topic names, the shared producer, topic creation.

Every chat change is an envelope (versioned JSON) on a topic keyed by room id, so one room's
changes land in one partition and every consumer group sees them in the room's order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from datetime import UTC, datetime

from django.conf import settings

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
    return json.dumps(value, separators=(",", ":"), default=str).encode()


_producer = None
_producer_lock = threading.Lock()


def get_producer():
    """The process-wide producer: acks=all, bounded waits, a little linger for batching.

    Raises KafkaUnavailable (naming the broker) when the broker cannot be reached.
    """
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                from kafka import KafkaProducer
                from kafka.errors import KafkaError

                timeout_ms = int(settings.KAFKA_PRODUCE_TIMEOUT_S * 1000)
                try:
                    _producer = KafkaProducer(
                        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS.split(","),
                        acks="all",
                        linger_ms=2,
                        batch_size=64 * 1024,
                        retries=5,
                        max_in_flight_requests_per_connection=1,  # keeps a room's order on retries
                        max_block_ms=timeout_ms,
                        # Not shortening kafka-python's delivery timeout (120 s) to ours: measured
                        # here, a batch expired while its request was in flight left the partition
                        # muted and every later send failed. So a send answered `unavailable` may
                        # still be stored later; clients re-send it with the same client_msg_id.
                        request_timeout_ms=timeout_ms,
                        bootstrap_timeout_ms=timeout_ms,
                        reconnect_backoff_max_ms=1000,
                        client_id="chat-producer",
                    )
                except KafkaError as exc:
                    raise KafkaUnavailable(type(exc).__name__) from exc
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


def _send(name: str, key, value: dict):
    from kafka.errors import KafkaError

    try:
        return get_producer().send(topic(name), key=str(key).encode(), value=encode(value))
    except KafkaError as exc:
        raise KafkaUnavailable(type(exc).__name__) from exc


def produce(name: str, *, key, value: dict, timeout: float | None = None) -> None:
    """Send one envelope and wait until the broker acknowledged it (acks=all)."""
    from kafka.errors import KafkaError

    future = _send(name, key, value)
    try:
        future.get(timeout=timeout or settings.KAFKA_PRODUCE_TIMEOUT_S)
    except KafkaError as exc:
        raise KafkaUnavailable(type(exc).__name__) from exc


async def produce_async(name: str, *, key, value: dict) -> None:
    """Like :func:`produce`, without blocking the event loop while the broker acknowledges."""
    from kafka.errors import KafkaError

    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def settle(result=None, error=None):
        if not done.done():
            done.set_exception(error) if error is not None else done.set_result(result)

    if _producer is None:
        # Creating the producer connects to the broker: never on the event loop.
        await loop.run_in_executor(None, get_producer)
    if get_producer()._metadata.partitions_for_topic(topic(name)):
        future = _send(name, key, value)  # metadata known: send() only appends to a batch
    else:
        # Without metadata send() blocks up to max_block_ms: keep that off the event loop.
        future = await loop.run_in_executor(None, _send, name, key, value)
    future.add_callback(lambda meta: loop.call_soon_threadsafe(settle, meta))
    future.add_errback(lambda exc: loop.call_soon_threadsafe(settle, None, exc))
    try:
        await asyncio.wait_for(done, settings.KAFKA_PRODUCE_TIMEOUT_S)
    except (KafkaError, TimeoutError) as exc:
        raise KafkaUnavailable(type(exc).__name__) from exc


def ensure_topics(partitions: int | None = None) -> list[str]:
    """Create the project's topics where missing; returns the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS.split(","), client_id="chat-admin", request_timeout_ms=10000
    )
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(topic(name), partitions or settings.KAFKA_PARTITIONS, settings.KAFKA_REPLICATION)
            for name in ALL_TOPICS
            if topic(name) not in existing
        ]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in wanted]
    finally:
        admin.close()
