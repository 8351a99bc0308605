"""Only the delivery path pays for short waits: the groups nobody waits on as they happen fetch
and write at the longer background interval (fewer broker requests and transactions), and the
retry topic's re-drive costs nothing when nothing is parked."""

from __future__ import annotations

import time

import pytest

from backup.workers import BackupWorker
from chat_messages.workers import PersistWorker
from search.workers import IndexWorker
from streams.pipeline.retry import retries_redrive


def test_persist_keeps_the_short_waits_and_index_and_backup_take_the_background_interval(settings):
    settings.KAFKA_FETCH_MAX_WAIT_MS = 20
    settings.KAFKA_BATCH_INTERVAL_MS = 10
    settings.KAFKA_BACKGROUND_INTERVAL_MS = 250

    persist, index, backup = PersistWorker(), IndexWorker(), BackupWorker()

    assert persist._interval_ms(settings.KAFKA_FETCH_MAX_WAIT_MS) == 20
    assert persist._interval_ms(settings.KAFKA_BATCH_INTERVAL_MS) == 10
    for worker in (index, backup):
        assert worker._interval_ms(settings.KAFKA_FETCH_MAX_WAIT_MS) == 250
        assert worker._interval_ms(settings.KAFKA_BATCH_INTERVAL_MS) == 250


def test_a_background_interval_shorter_than_the_live_one_never_shortens_a_wait(settings):
    settings.KAFKA_BACKGROUND_INTERVAL_MS = 0

    assert IndexWorker()._interval_ms(20) == 20


@pytest.mark.kafka
def test_an_empty_retry_topic_is_answered_at_once_without_joining_its_group():
    while retries_redrive(max_records=1000):
        pass  # whatever other tests parked there
    started = time.monotonic()

    assert retries_redrive(max_records=10) == 0
    # Joining the group and polling out its deadline took about 9 s (every 30 s, from Celery beat).
    assert time.monotonic() - started < 3
