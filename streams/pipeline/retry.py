"""The retry topic's re-drive: records parked by a consumer group go back where they failed.

A worker whose order does not matter (``Worker.retry_topic`` set: ``chat-index``) parks a record
that failed for an unknown reason on ``chat.messages.retry`` with its attempt count and source
topic; Celery beat runs :func:`retries_redrive` (``streams.tasks.redrive_retries``) every 30 s.
``chat-persist`` and ``chat-backup`` never use it: they retry in place (docs/architecture.md).
"""

from __future__ import annotations

import time

from django.conf import settings

from streams import codec

from . import kafka
from .broker import Broker


def _waiting(group: str, topic: str) -> bool:
    """Whether ``topic`` holds records ``group`` has not committed (``Broker.lag``, which asks
    without joining the group); True when the broker cannot say, or knows no such topic yet."""
    from confluent_kafka import KafkaException

    broker = Broker()
    try:
        return not broker.partitions(topic) or bool(broker.lag(group, topic))
    except KafkaException:
        return True
    finally:
        broker.close()


def retries_redrive(*, max_records: int, poll_seconds: float = 3.0) -> int:
    """Re-produce records from the retry topic onto the topic they came from, keyed as before.

    Offsets of the retry topic are committed only after every re-produced record was
    acknowledged, so a crash re-drives a record twice at worst, which the idempotent consumers
    absorb. A record keeps its attempt count; past the limit the worker dead-letters it.
    """
    from confluent_kafka import Consumer

    group, topic = kafka.topic("chat-retry"), kafka.topic(kafka.RETRY)
    if not _waiting(group, topic):
        # Nearly always: nothing parked. Joining the group and polling out the deadline below cost
        # the broker and this process 9 s of requests every 30 s for nothing.
        return 0
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": settings.KAFKA_HEARTBEAT_MS,
        }
    )
    consumer.subscribe([topic])
    moved = 0
    try:
        # Joining the group takes about half the session timeout before the first record.
        deadline = time.monotonic() + poll_seconds + settings.KAFKA_SESSION_TIMEOUT_MS / 1000
        while moved < max_records and time.monotonic() < deadline:
            records = [m for m in consumer.consume(max_records - moved, 0.5) if m.error() is None]
            if not records:
                if moved:
                    break
                continue
            for record in records:
                key = (record.key() or b"none").decode(errors="replace")
                try:
                    value = codec.loads(record.value())
                    target = value.get("source_topic", kafka.MESSAGES)
                except (TypeError, ValueError, AttributeError) as exc:
                    payload = {
                        "failed_group": "chat-retry",
                        "reason": f"undecodable: {exc}",
                        "record": repr(record.value()),
                    }
                    kafka.produce(kafka.DLQ, key=key, value=payload)
                    continue
                # Back where it failed, keyed as before.
                kafka.produce(target, key=key, value=value)
                moved += 1
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return moved
