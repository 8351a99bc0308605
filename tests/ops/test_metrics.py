"""/metrics in the test process: who may read it, what it says when a source is down, and the
figures the consumer processes and Celery tasks leave in Redis for it."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from ops import task_runs
from streams.pipeline.stats import BatchStats, consumer_stats, index_key
from tests.conftest import free_port

# The sources are asked from threads of their own (their own database connections).
pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a scrape, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_bearer_token_is_needed_unless_staff_is_signed_in(client, django_user_model):
    with override_settings(METRICS_TOKEN="s3cret-token"):
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-it")
        right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
        member = django_user_model.objects.create_user(username="member", password="x-long-enough")
        client.force_login(member)
        not_staff = client.get("/metrics")
        staff = django_user_model.objects.create_user(username="staff", password="x-long-enough", is_staff=True)
        client.force_login(staff)
        signed_in = client.get("/metrics")
    with override_settings(METRICS_TOKEN=""):
        client.logout()
        no_token_set = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert not_staff.status_code == 403
    assert no_token_set.status_code == 401
    for answer in (right, signed_in):
        assert answer.status_code == 200
        assert answer["Content-Type"].startswith("text/plain")
        got = samples(answer.content.decode())
        assert got[("chat_metric_up", (("source", "kafka"),))] == 1.0
        assert ("chat_consumer_lag_records", (("group", "chat-persist"), ("topic", "chat.messages"))) in got


def test_a_broker_that_is_down_makes_its_figures_unknown_not_the_scrape_fail(client):
    with override_settings(
        METRICS_TOKEN="t", METRICS_TIMEOUT_S=1.0, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}"
    ):
        answer = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t")

    assert answer.status_code == 200
    got = samples(answer.content.decode())
    assert got[("chat_metric_up", (("source", "kafka"),))] == 0.0
    assert got[("chat_metric_up", (("source", "dead_letters"),))] == 0.0
    assert got[("chat_metric_up", (("source", "redis"),))] == 1.0
    assert not [key for key in got if key[0] in ("chat_consumer_lag_records", "chat_dead_letters_records")]
    # The index's own figures are still read; only its lag is unknown.
    assert got[("chat_metric_up", (("source", "search"),))] == 0.0
    assert ("chat_search_index_documents", (("backend", "postgres"),)) in got
    assert not [key for key in got if key[0] == "chat_search_index_lag_records"]


def test_a_consumer_process_leaves_its_batch_figures_in_redis():
    client = redis.Redis.from_url(settings.REDIS_URL)
    with override_settings(KAFKA_TOPIC_PREFIX=f"stats-{uuid.uuid4().hex[:6]}-"):
        stats = BatchStats("test-group")
        stats.batch(10, 0.01)  # the first batch is written at once
        stats.batch(30, 0.02)  # within the second: kept for the next write
        first = consumer_stats(client)
        stats.flush()
        second = consumer_stats(client)
        stats.close()
        after_stop = consumer_stats(client)
        left = client.zcard(index_key())
    client.close()

    assert [(e["group"], e["records_total"], e["batches_total"]) for e in first] == [("test-group", 10, 1)]
    [entry] = second
    assert (entry["records_total"], entry["batches_total"], entry["last_batch_records"]) == (40, 2, 30)
    assert entry["mean_batch"] == 20.0
    assert entry["rate"] > 0
    assert entry["pid"] == stats.pid
    assert after_stop == [] and left == 0


def test_a_consumer_goes_on_when_redis_is_down():
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        stats = BatchStats("test-group")
        stats.batch(5, 0.01)  # must not raise
        stats.batch(5, 0.01)
        stats.close()

    assert stats.records == 10 and stats.paused_until > 0


def test_the_last_run_of_a_scheduled_task_is_noted(celery_eager, client):
    from attachments.tasks import purge, sweep

    store = redis.Redis.from_url(settings.REDIS_URL)
    store.hdel(task_runs.KEY, "attachments.sweep", "attachments.purge")

    sweep.delay()
    purge.delay()  # not scheduled by beat: not noted

    runs = task_runs.task_runs(store)
    store.close()
    assert runs["attachments.sweep"]["state"] == "SUCCESS"
    assert "attachments.purge" not in runs
    with override_settings(METRICS_TOKEN="t"):
        got = samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode())
    assert got[("chat_task_last_run_success", (("task", "attachments.sweep"),))] == 1.0
    assert (
        got[("chat_task_last_run_timestamp_seconds", (("task", "attachments.sweep"),))]
        == runs["attachments.sweep"]["at"]
    )
    assert (
        got[
            (
                "chat_beat_interval_seconds",
                (("entry", "redrive-retry-topic"), ("task", "streams.tasks.redrive_retries")),
            )
        ]
        == 30.0
    )
