"""The consumer loop's failure handling: dead letters, retries and their re-drive."""

from __future__ import annotations

import json

import pytest

from messages.services import retries_redrive
from streams import kafka
from streams.worker import PermanentError, Raw, Record, Worker
from tests.support import KafkaTap


class Flaky(Worker):
    """Fails on records whose body says so, the way a bug or a bad row would."""

    group_id = "test-flaky"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def consume(self, records: list[Record]) -> None:
        for record in records:
            if record.value.get("body") == "poison":
                raise PermanentError("cannot ever work")
            if record.value.get("body") == "boom":
                raise RuntimeError("transient-looking failure")
        self.seen.extend(r.value["body"] for r in records)


@pytest.fixture
def taps():
    opened = {name: KafkaTap(name) for name in (kafka.RETRY, kafka.DLQ, kafka.MESSAGES)}
    yield opened
    for tap in opened.values():
        tap.close()


def _raw(offset: int, value) -> Raw:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Raw("chat.messages", 0, offset, b"7", data)


@pytest.mark.django_db
def test_bad_records_are_set_aside_and_the_rest_of_the_batch_is_processed(taps):
    worker = Flaky()
    worker.max_batch_attempts = 1
    worker.handle(
        [
            _raw(0, kafka.envelope("message.send", room=7, body="ok 1")),
            _raw(1, b"{not json"),
            _raw(2, kafka.envelope("message.send", room=7, body="poison")),
            _raw(3, kafka.envelope("message.send", room=7, body="boom")),
            _raw(4, kafka.envelope("message.send", room=7, body="ok 2")),
        ]
    )
    assert worker.seen == ["ok 1", "ok 2"]
    dead = [r.value for r in taps[kafka.DLQ].records(2)]
    assert [d["reason"].split(":")[0] for d in dead] == ["undecodable", "cannot ever work"]
    retry = [r.value for r in taps[kafka.RETRY].records(1)]
    assert [(r["body"], r["attempts"], r["failed_group"]) for r in retry] == [("boom", 1, "test-flaky")]
    assert "RuntimeError" in retry[0]["last_error"]

    # The Celery re-drive puts it back on chat.messages, keyed by its room.
    assert retries_redrive(max_records=10) >= 1
    redriven = [r for r in taps[kafka.MESSAGES].records(1) if r.value.get("body") == "boom"]
    assert redriven and redriven[0].key == b"7" and redriven[0].value["attempts"] == 1


@pytest.mark.django_db
def test_a_record_that_keeps_failing_ends_in_the_dead_letter_topic(taps):
    worker = Flaky()
    record = Record("chat.messages", 0, 0, b"7", {**kafka.envelope("message.send", room=7, body="boom"), "attempts": 4})
    worker.process_one(record)
    dead = taps[kafka.DLQ].records(1)
    assert dead and dead[0].value["attempts"] == 5


class Ordered(Flaky):
    """A worker whose records must not be overtaken (retry_topic = None), like persist and backup."""

    retry_topic = None
    retry_backoff_s = 0.01

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def consume(self, records: list[Record]) -> None:
        if any(r.value.get("body") == "flaky" for r in records) and self.failures:
            self.failures -= 1
            raise RuntimeError("not yet")
        super().consume(records)


@pytest.mark.django_db
def test_an_ordered_worker_retries_a_failing_record_in_place_and_keeps_the_order(taps):
    worker = Ordered(failures=4)
    worker.max_batch_attempts = 1
    worker.process([
        Record("chat.messages", 0, i, b"7", kafka.envelope("message.send", room=7, body=body))
        for i, body in enumerate(["a", "flaky", "b"])
    ])  # fmt: skip
    assert worker.seen == ["a", "flaky", "b"]
    assert taps[kafka.RETRY].records(1, timeout=1) == []


@pytest.mark.django_db
def test_an_ordered_worker_dead_letters_a_record_that_never_succeeds(taps):
    worker = Ordered(failures=100)
    worker.process_one(Record("chat.messages", 0, 0, b"7", kafka.envelope("message.send", room=7, body="flaky")))
    dead = taps[kafka.DLQ].records(1)
    assert dead and dead[0].value["reason"].startswith("failed 5 times: RuntimeError")
    assert taps[kafka.RETRY].records(1, timeout=1) == []
