"""The broker's topics as `manage.py kafka_topics` made them, remembered to re-create them at once.

The embedded broker keeps everything in memory, topics included. When it is restarted, a client
that reconnects first may make it auto-create a topic with the broker's default partition count
(Tansu: 4), and a topic cannot be given partitions afterwards (no CreatePartitions in Tansu).
So the supervisor remembers each topic's partition count while the broker is up and re-creates
them the moment the new broker accepts connections, before `kafka_topics` (a Django process,
seconds to start) checks them. Only confluent-kafka is used here, nothing from Django.
"""

from __future__ import annotations


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.nagle.disable": True})


def topic_partitions(bootstrap: str) -> dict[str, int]:
    """Each topic's partition count (internal topics left out)."""
    metadata = _admin(bootstrap).list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in metadata.topics.items() if not name.startswith("__")}


def create_topics(bootstrap: str, partitions: dict[str, int], timeout: float = 5.0) -> list[str]:
    """Create the topics that are missing; returns the names it created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    if not partitions:
        return []
    admin = _admin(bootstrap)  # kept referenced until the answers came: a freed client drops its requests
    futures = admin.create_topics(
        [NewTopic(name, count, 1) for name, count in partitions.items()], operation_timeout=timeout
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException:  # it exists already (or the broker went again: the next restart retries)
            pass
    return created
