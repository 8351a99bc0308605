"""Deleting a room: the data goes, and the other Kafka consumer groups hear of it."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from django.conf import settings

from rooms import services
from rooms.models import Room
from streams import kafka

pytestmark = pytest.mark.django_db


@pytest.fixture
def messages_topic():
    """A consumer positioned at the end of chat.messages; ``read(predicate)`` waits for a record."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS.split(","), enable_auto_commit=False, group_id=None
    )
    name = kafka.topic(kafka.MESSAGES)
    partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)  # resolve the end offsets now, before anything is produced

    def read(predicate, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    value = json.loads(record.value)
                    if predicate(value):
                        return {"key": record.key.decode(), **value}
        raise AssertionError("no matching record on chat.messages")

    yield read
    consumer.close()


def test_a_deleted_room_is_announced_on_the_messages_topic(make_user, make_room, committed, messages_topic):
    owner = make_user()
    room = make_room(owner=owner)
    with committed():
        services.room_delete(actor=owner, room_id=room.pk)
    record = messages_topic(lambda v: v.get("kind") == "room.deleted" and v.get("room") == room.pk)
    assert record["key"] == str(room.pk)
    assert record["v"] == kafka.ENVELOPE_VERSION


@pytest.fixture
def kafka_down(settings):
    """Point the shared producer at a port nothing listens on, then restore it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kafka.reset_producer()
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{port}"
    settings.KAFKA_PRODUCE_TIMEOUT_S = 0.5
    yield
    kafka.reset_producer()


def test_a_deletion_stands_when_kafka_is_down_and_the_failure_is_logged(
    make_user, make_room, store_messages, committed, kafka_down, caplog
):
    owner = make_user()
    room = make_room(owner=owner)
    store_messages(room, owner, count=2)
    with caplog.at_level(logging.ERROR, logger="rooms.services"), committed():
        services.room_delete(actor=owner, room_id=room.pk)
    assert not Room.objects.filter(pk=room.pk).exists()
    assert f"room {room.pk} was deleted but announcing room.deleted on Kafka failed" in caplog.text
