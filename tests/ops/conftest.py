"""Fixtures of the operations tests: Kafka topics of the test's own, an admin client."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings


@pytest.fixture
def own_topics(kafka_topics):
    """A topic prefix of the test's own (created empty): its dead letters and lag are the test's alone."""
    from streams.pipeline import kafka

    prefix = f"ops-{uuid.uuid4().hex[:8]}-"
    with override_settings(KAFKA_TOPIC_PREFIX=prefix):
        kafka.ensure_topics()
        yield prefix


@pytest.fixture
def operator(django_user_model):
    """A signed-in superuser's admin client."""
    from django.test import Client

    user = django_user_model.objects.create_superuser(username=f"op{uuid.uuid4().hex[:6]}", password="x-long-enough")
    client = Client()
    client.force_login(user)
    client.user = user
    return client
