"""Read-only questions to the broker about groups and partitions (the drain, index lag).

Nothing here joins a group or commits: asking about ``chat-persist`` costs that group nothing.
"""

from __future__ import annotations

import time

from django.conf import settings

# Consumers kept open for asking groups' committed offsets (one per group), at most.
GROUPS_KEPT = 8


class Broker:
    """Read-only questions to the broker: partitions, high watermarks, a group's committed offsets."""

    def __init__(self) -> None:
        from confluent_kafka import Consumer

        self.config = {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "enable.auto.commit": False,
            "socket.nagle.disable": True,
        }
        self.probe = Consumer({**self.config, "group.id": "chat-drain"})
        self.reader = None
        self.by_group: dict[str, object] = {}

    def _consumer(self, group: str, **extra):
        from confluent_kafka import Consumer

        return Consumer({**self.config, "group.id": group, **extra})

    def partitions(self, topic: str) -> list[int]:
        meta = self.probe.list_topics(topic, timeout=10)
        info = meta.topics.get(topic)
        if info is None or info.error is not None:
            return []
        return sorted(info.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(low, high) as ListOffsets answers them; on Tansu ``high`` may be short of the end (see ends())."""
        from confluent_kafka import TopicPartition

        return self.probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)

    def ends(self, topic: str, starts: dict[int, int], *, budget: float = 3.0) -> dict[int, int]:
        """The end of each partition (its high watermark), read by fetching from ``starts``.

        Tansu answers a ListOffsets "latest" request with one past the last *batch*'s first
        offset, not one past its last record, so the end is taken from a fetch: the partition-EOF
        event carries the fetch response's high watermark, which is right. The callers start at
        the last batch (ListOffsets minus one), so little is read. When a partition holds more than
        can be read within ``budget``, the offset reached is returned (a lower bound).
        """
        from confluent_kafka import KafkaError, TopicPartition

        if self.reader is None:
            self.reader = self._consumer("chat-drain", **{"enable.partition.eof": True, "fetch.wait.max.ms": 10})
        reached = dict(starts)
        done: dict[int, int] = {}
        self.reader.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        try:
            deadline = time.monotonic() + budget
            while len(done) < len(starts) and time.monotonic() < deadline:
                for message in self.reader.consume(1000, 0.1):
                    error = message.error()
                    if error is None:
                        reached[message.partition()] = max(reached[message.partition()], message.offset() + 1)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        done[message.partition()] = message.offset()
        finally:
            self.reader.unassign()
        return {p: max(done.get(p, reached[p]), reached[p]) for p in starts}

    def committed(self, group: str, topic: str, partitions: list[int]) -> dict[int, int | None]:
        """The group's committed offset per partition (None: it never committed there)."""
        from confluent_kafka import TopicPartition

        # A consumer that never subscribes does not join the group: asking costs the group nothing.
        consumer = self.by_group.pop(group, None)
        if consumer is None:
            consumer = self._consumer(group)
            if len(self.by_group) >= GROUPS_KEPT:
                # The least recently asked goes: a Broker kept open (the metrics) asked about ever
                # new groups (tests' own prefixes) would otherwise hold a client per group for
                # ever, each with its connections to the broker.
                oldest = next(iter(self.by_group))
                self.by_group.pop(oldest).close()
        self.by_group[group] = consumer  # last: the most recently asked
        answer = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in answer}

    def lag(self, group: str, topic: str) -> dict[int, tuple[int, int]]:
        """Per partition with records the group has not committed: (first uncommitted offset, high watermark)."""
        partitions = self.partitions(topic)
        if not partitions:
            return {}
        committed = self.committed(group, topic, partitions)
        starts, probes = {}, {}
        for partition in partitions:
            low, listed = self.watermarks(topic, partition)
            start = committed.get(partition)
            starts[partition] = low if start is None else max(start, low)
            # Read from the last batch only: the end is at or after ListOffsets' answer minus one.
            probes[partition] = max(starts[partition], listed - 1)
        ends = self.ends(topic, probes)
        return {p: (starts[p], ends[p]) for p in partitions if ends[p] > starts[p]}

    def close(self) -> None:
        for consumer in [self.probe, self.reader, *self.by_group.values()]:
            if consumer is not None:
                consumer.close()
