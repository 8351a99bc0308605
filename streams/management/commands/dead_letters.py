"""List what the consumer groups set aside on the dead-letter topic, newest last.

Each line: when, which group, the record's kind and room, where it came from (topic/partition/
offset) and why. ``--json`` prints the whole entries (the record included) one per line, for a
script or for re-producing a record once its cause is fixed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams import codec
from streams.pipeline import kafka


class Command(BaseCommand):
    help = "List the records on the dead-letter topic (chat.messages.dlq) with their reasons."

    def add_arguments(self, parser):
        parser.add_argument("--last", type=int, default=50, help="at most this many per partition (default 50)")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON entry per line, record included"
        )

    def handle(self, *args, last: int, as_json: bool, **options):
        entries = dead_letters(last=last)
        if not entries:
            self.stdout.write("no dead letters")
            return
        for entry in entries:
            if as_json:
                self.stdout.write(_dumps(entry))
                continue
            record = entry.get("record") if isinstance(entry.get("record"), dict) else {}
            at = entry.get("at")
            when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if isinstance(at, int | float) else "?"
            origin = f"{entry.get('topic', '?')}[{entry.get('partition', '?')}]@{entry.get('offset', '?')}"
            self.stdout.write(
                f"{when} {entry.get('failed_group', '?')} {record.get('kind', '?')} room={record.get('room', '?')}"
                f" from {origin}: {entry.get('reason', '?')}"
            )
        self.stdout.write(f"{len(entries)} dead letter(s)")


def dead_letters(*, last: int) -> list[dict]:
    """The newest ``last`` entries of each partition of the dead-letter topic, oldest first."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": "chat-dlq-reader",
            "enable.auto.commit": False,
        }
    )
    name = kafka.topic(kafka.DLQ)
    try:
        try:
            metadata = consumer.list_topics(name, timeout=10)
        except KafkaException as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is unavailable: {exc}") from exc
        partitions = list((metadata.topics.get(name) and metadata.topics[name].partitions) or {})
        found: list[dict] = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
            start = max(low, high - last)
            if start >= high:
                continue
            consumer.assign([TopicPartition(name, partition, start)])
            while start < high:
                message = consumer.poll(5)
                if message is None:
                    break
                if message.error():
                    continue
                start = message.offset() + 1
                try:
                    found.append(codec.loads(message.value()))
                except ValueError:
                    found.append({"reason": "undecodable dead letter", "raw": repr(message.value()[:200])})
        return sorted(found, key=lambda e: e.get("at") or 0)
    finally:
        consumer.close()


def _dumps(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False, default=str)
