"""The dead-letter topic read back: listing, counting, re-driving and marking its records.

A consumer group parks a record it can never process on ``chat.messages.dlq`` (``Worker.dead_letter``:
``{failed_group, reason, record, at, topic, partition, offset}``; a record that used up its tries
through the retry topic arrives as its own envelope with ``last_error`` and ``source_topic``).
``manage.py dead_letters`` and the admin's Pipeline page list them; an operator re-drives one (it
goes back to the topic it failed on) or discards it. Neither deletes anything from the topic: a
:class:`streams.models.DeadLetterMark` records that it was dealt with, and listings leave it out.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from streams import codec

from . import kafka
from .broker import Broker

READER_GROUP = "chat-dlq-reader"  # never commits: reading costs no group anything
REDRIVABLE = (kafka.MESSAGES, kafka.CDC)


@dataclass
class DeadLetter:
    """One record of the dead-letter topic, with what is known of where it came from."""

    partition: int  # its own place on the dead-letter topic
    offset: int
    key: str
    digest: str  # of the value's bytes (see DeadLetterMark)
    failed_group: str
    reason: str
    record: object  # the record as the group got it: a dict once decoded, else its text
    at: float | None = None  # when it was set aside (seconds since the epoch)
    origin: str | None = None  # the full name of the topic it failed on, when known
    origin_partition: int | None = None
    origin_offset: int | None = None
    handled: str | None = None  # DeadLetterMark.Action once an operator dealt with it
    entry: dict = field(default_factory=dict)  # the dead letter as stored

    @property
    def topic(self) -> str:
        return kafka.topic(kafka.DLQ)

    @property
    def place(self) -> str:
        """``topic:partition:offset`` on the dead-letter topic: what the audit log names."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def when(self) -> datetime | None:
        return datetime.fromtimestamp(self.at, UTC) if self.at is not None else None

    @property
    def kind(self) -> str:
        return str(self.record.get("kind", "?")) if isinstance(self.record, dict) else "?"

    @property
    def room(self) -> str:
        return str(self.record.get("room", "?")) if isinstance(self.record, dict) else "?"

    def summary(self) -> dict:
        """Where it is and came from, and why it was set aside (the audit log's ``before``)."""
        return {
            "dead_letter": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "topic": self.origin,
            "partition": self.origin_partition,
            "offset": self.origin_offset,
            "failed_group": self.failed_group,
            "reason": self.reason,
            "kind": self.kind,
            "key": self.key,
        }

    def target(self) -> str | None:
        """The (unprefixed) topic a re-drive sends it to; None when it cannot be re-driven.

        A record whose bytes could not be decoded cannot be re-driven (nothing would read it
        better the second time); nor one whose topic is unknown.
        """
        if not isinstance(self.record, dict) or set(self.record) == {"raw"}:
            return None
        name = None
        if self.origin:
            prefix = settings.KAFKA_TOPIC_PREFIX
            name = self.origin[len(prefix) :] if prefix and self.origin.startswith(prefix) else self.origin
        elif self.record.get("source_topic"):
            name = self.record["source_topic"]
        else:
            # Set aside without its place (a send persist refused after the batch): the group's topic.
            topics = _group_topics(self.failed_group)
            name = topics[0] if len(topics) == 1 else None
        return name if name in REDRIVABLE else None

    def redrive_value(self) -> dict:
        """The record as it goes back: with fresh tries, and read again by the groups that need it.

        A group that another follows (``chat-persist``, followed by ``chat-index``) failed before
        its followers could do their part: every group reads the record again (each is
        idempotent). Otherwise only the failed group does (``failed_group``): the others applied
        it already, and an old edit applied again would go back in time.
        """
        value = {k: v for k, v in self.record.items() if k not in ("attempts", "last_error")}
        if self.failed_group and not _followed(self.failed_group):
            value["failed_group"] = self.failed_group
        else:
            value.pop("failed_group", None)
        return value


def parse(partition: int, offset: int, key: bytes | None, value: bytes | None) -> DeadLetter:
    """A dead letter from the bytes on the topic, whichever of its shapes it has."""
    data = value or b""
    letter = DeadLetter(
        partition=partition,
        offset=offset,
        key=(key or b"none").decode(errors="replace"),
        digest=hashlib.sha256(data).hexdigest()[:32],
        failed_group="?",
        reason="?",
        record=None,
    )
    try:
        entry = codec.loads(data)
    except (TypeError, ValueError):
        letter.reason, letter.record = "undecodable dead letter", data[:200].decode(errors="replace")
        return letter
    if not isinstance(entry, dict):
        letter.reason, letter.record = "undecodable dead letter", repr(entry)[:200]
        return letter
    letter.entry = entry
    letter.failed_group = str(entry.get("failed_group", "?"))
    if "record" in entry:  # Worker.dead_letter, retries_redrive
        letter.reason = str(entry.get("reason", "?"))
        letter.record = entry["record"]
        letter.at = entry.get("at") if isinstance(entry.get("at"), int | float) else None
        letter.origin = entry.get("topic")
        letter.origin_partition, letter.origin_offset = entry.get("partition"), entry.get("offset")
    else:  # the envelope itself, after its last try through the retry topic (Worker.send_to_retry)
        letter.reason = f"failed {entry.get('attempts', '?')} times: {entry.get('last_error', '?')}"
        letter.record = entry
        if entry.get("source_topic"):
            letter.origin = kafka.topic(str(entry["source_topic"]))
    return letter


def dead_letters_list(*, last: int = 50, handled: bool = False, budget: float = 10.0) -> list[DeadLetter]:
    """The newest ``last`` records of each partition of the dead-letter topic, oldest first.

    Records an operator re-drove or discarded are left out unless ``handled``. Raises
    ``KafkaUnavailable`` when the broker cannot be asked.
    """
    from confluent_kafka import KafkaException

    name = kafka.topic(kafka.DLQ)
    broker = Broker()
    try:
        partitions = broker.partitions(name)
        spans = {}
        for partition in partitions:
            low, listed = broker.watermarks(name, partition)
            spans[partition] = low, max(low, listed - 1)
        # The true end of each partition (Broker.ends: a ListOffsets answer may be short of it).
        ends = broker.ends(name, {p: probe for p, (_low, probe) in spans.items()}) if spans else {}
    except KafkaException as exc:
        raise kafka.KafkaUnavailable(str(exc)) from exc
    finally:
        broker.close()
    wanted = {p: (max(spans[p][0], ends[p] - last), ends[p]) for p in spans if ends[p] > spans[p][0]}
    letters = _read(name, wanted, budget=budget)
    _mark_handled(letters)
    if not handled:
        letters = [letter for letter in letters if letter.handled is None]
    return sorted(letters, key=lambda letter: (letter.at or 0, letter.partition, letter.offset))


def dead_letter_get(*, partition: int, offset: int, budget: float = 10.0) -> DeadLetter | None:
    """The dead letter at that place (None: there is none, e.g. past the topic's retention)."""
    letters = _read(kafka.topic(kafka.DLQ), {partition: (offset, offset + 1)}, budget=budget)
    _mark_handled(letters)
    return letters[0] if letters and letters[0].offset == offset else None


def dead_letters_count(*, broker: Broker | None = None) -> dict[int, tuple[int, int, int]]:
    """Per partition of the dead-letter topic holding records: (first offset, end, records marked handled).

    The records are ``end - first``; the marks are counted by place (not read back), so this asks
    the broker for offsets only (through ``broker`` when given: one kept open answers faster).
    Raises what the broker or the database raise.
    """
    from streams.models import DeadLetterMark

    name = kafka.topic(kafka.DLQ)
    own = broker is None
    broker = broker or Broker()
    try:
        # A group that never commits: its "lag" is every record still on the topic.
        spans = broker.lag(kafka.topic(READER_GROUP), name)
    finally:
        if own:
            broker.close()
    counts = {}
    for partition, (first, end) in spans.items():
        marked = DeadLetterMark.objects.filter(topic=name, partition=partition, offset__gte=first, offset__lt=end)
        counts[partition] = (first, end, marked.count())
    return counts


def dead_letter_mark(letter: DeadLetter, *, action: str) -> bool:
    """Record that ``letter`` was dealt with; False when it already was (by someone else, meanwhile)."""
    from streams.models import DeadLetterMark

    try:
        with transaction.atomic():
            DeadLetterMark.objects.create(
                topic=letter.topic,
                partition=letter.partition,
                offset=letter.offset,
                digest=letter.digest,
                action=action,
            )
    except IntegrityError:
        return False
    letter.handled = action
    return True


def dead_letter_redrive(letter: DeadLetter) -> str:
    """Produce the record back onto the topic it failed on, keyed as before; returns that topic.

    Raises ValueError when it cannot be re-driven (``DeadLetter.target``), KafkaUnavailable when
    the broker did not acknowledge it.
    """
    target = letter.target()
    if target is None:
        raise ValueError("this dead letter cannot be re-driven: its record or its topic is unknown")
    kafka.produce(target, key=letter.key, value=letter.redrive_value())
    return target


def _read(name: str, wanted: dict[int, tuple[int, int]], *, budget: float) -> list[DeadLetter]:
    """The records of ``name`` from each partition's start up to its end (exclusive), within ``budget`` seconds."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    if not wanted:
        return []
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": kafka.topic(READER_GROUP),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }
    )
    found: list[DeadLetter] = []
    try:
        consumer.assign([TopicPartition(name, p, start) for p, (start, _end) in wanted.items()])
        left = {p for p, (start, end) in wanted.items() if end > start}
        deadline = time.monotonic() + budget
        while left and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                partition = message.partition()
                if partition not in left:
                    continue
                if message.error() is not None:
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        left.discard(partition)
                    continue
                start, end = wanted[partition]
                if message.offset() >= end:
                    left.discard(partition)
                    continue
                if message.offset() >= start:
                    found.append(parse(partition, message.offset(), message.key(), message.value()))
                if message.offset() + 1 >= end:
                    left.discard(partition)
    except KafkaException as exc:
        raise kafka.KafkaUnavailable(str(exc)) from exc
    finally:
        consumer.close()
    return found


def _mark_handled(letters: list[DeadLetter]) -> None:
    from streams.models import DeadLetterMark

    if not letters:
        return
    marks = DeadLetterMark.objects.filter(
        topic=letters[0].topic, partition__in={x.partition for x in letters}, offset__in={x.offset for x in letters}
    )
    by_place = {(m.partition, m.offset, m.digest): m.action for m in marks}
    for letter in letters:
        letter.handled = by_place.get((letter.partition, letter.offset, letter.digest))


def _group_topics(group: str) -> list[str]:
    """The (unprefixed) topics the configured consumer group ``group`` reads."""
    for path in settings.KAFKA_CONSUMERS.values():
        worker = import_string(path)
        if worker.group_id == group:
            return list(worker.topics)
    return []


def _followed(group: str) -> bool:
    """Whether another configured consumer group reads only what ``group`` committed."""
    return any(import_string(path).follows == group for path in settings.KAFKA_CONSUMERS.values())
