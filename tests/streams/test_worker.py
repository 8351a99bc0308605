"""The consumer loop's failure handling: dead letters, retries and their re-drive."""

from __future__ import annotations

import json

import pytest

from streams.pipeline import kafka
from streams.pipeline.retry import retries_redrive
from streams.pipeline.worker import PermanentError, Raw, Record, Worker
from tests.support import KafkaTap

pytestmark = pytest.mark.kafka  # produces to or reads back from the broker


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
    assert [d["reason"] for d in dead] == [
        "undecodable: unexpected character: line 1 column 2 (char 1)",
        "PermanentError: cannot ever work",
    ]
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
    worker.process([record])
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
    worker.process([
        Record("chat.messages", 0, i, b"7", kafka.envelope("message.send", room=7, body=body))
        for i, body in enumerate(["a", "flaky", "b"])
    ])  # fmt: skip
    assert worker.seen == ["a", "flaky", "b"]
    assert taps[kafka.RETRY].records(1, timeout=1) == []


@pytest.mark.django_db
def test_an_ordered_worker_dead_letters_a_record_that_never_succeeds(taps):
    worker = Ordered(failures=100)
    worker.process([Record("chat.messages", 0, 0, b"7", kafka.envelope("message.send", room=7, body="flaky"))])
    dead = taps[kafka.DLQ].records(1)
    assert dead and dead[0].value["reason"].startswith("failed 5 times: RuntimeError")
    assert taps[kafka.RETRY].records(1, timeout=1) == []


class Typed(Worker):
    """Stores integers the way a worker stores rows: a text that is not one is refused by PostgreSQL."""

    group_id = "test-typed"
    retry_topic = None

    def __init__(self, transient_failures: int = 0) -> None:
        super().__init__()
        self.calls = 0
        self.seen: list[str] = []
        self.transient_failures = transient_failures

    def consume(self, records: list[Record]) -> None:
        from django.db import OperationalError, connection, transaction

        self.calls += 1
        if self.transient_failures:
            self.transient_failures -= 1
            raise OperationalError("server closed the connection unexpectedly")
        with transaction.atomic(), connection.cursor() as cursor:
            for record in records:
                cursor.execute("SELECT %s::int", [record.value["n"]])
        self.seen.extend(r.value["n"] for r in records)


def _numbers(values: list[str]) -> list[Record]:
    return [Record("chat.messages", 0, i, b"7", kafka.envelope("test", room=7, n=v)) for i, v in enumerate(values)]


@pytest.mark.django_db
def test_a_poison_record_is_found_by_splitting_and_the_rest_of_the_batch_is_kept_in_order(taps):
    values = [str(i) for i in range(64)]
    values[37] = "thirty-seven"
    worker = Typed()
    worker.process(_numbers(values))
    assert worker.seen == [v for v in values if v != "thirty-seven"]
    # A bisection: about two transactions per halving, not a retry of the whole batch per attempt.
    assert worker.calls <= 2 * 6 + 1
    dead = taps[kafka.DLQ].records(1)
    assert dead and dead[0].value["record"]["n"] == "thirty-seven"
    assert dead[0].value["reason"].startswith("DataError: invalid input syntax for type integer")
    assert dead[0].value["offset"] == 37


@pytest.mark.django_db
def test_a_transient_failure_retries_the_whole_batch_in_place_and_dead_letters_nothing(taps):
    worker = Typed(transient_failures=2)
    worker.process(_numbers(["1", "2", "3"]))
    assert worker.seen == ["1", "2", "3"] and worker.calls == 3
    assert taps[kafka.DLQ].records(1, timeout=1) == []


@pytest.mark.django_db
def test_failures_are_told_apart_by_what_they_say_about_the_record():
    from django.db import (
        DatabaseError,
        DataError,
        IntegrityError,
        OperationalError,
        ProgrammingError,
        connection,
        transaction,
    )

    from streams.pipeline.worker import PERMANENT, SYSTEMIC, TRANSIENT, UNKNOWN, classify

    def raised(sql: str) -> DatabaseError:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
        except DatabaseError as exc:
            return exc
        raise AssertionError(f"{sql} did not fail")

    assert classify(raised("SELECT 1/0")) == PERMANENT  # bad data: 22012
    assert isinstance(raised("SELECT 'x'::int"), DataError)
    assert classify(raised("SELECT * FROM no_such_table")) == SYSTEMIC  # no record can pass
    assert isinstance(raised("SELECT * FROM no_such_table"), ProgrammingError)
    assert classify(raised("SET LOCAL statement_timeout = '10ms'; SELECT pg_sleep(1)")) == (
        TRANSIENT  # 57014: cancelled, it may pass next time
    )
    assert classify(IntegrityError("duplicate key")) == PERMANENT
    assert classify(OperationalError("could not connect to server")) == TRANSIENT
    assert classify(kafka.KafkaUnavailable("timed out")) == TRANSIENT
    # Bad data and a bug look alike in Python: a few tries, then the breaker decides.
    assert classify(ValueError("A string literal cannot contain NUL (0x00) characters.")) == UNKNOWN
    assert classify(TypeError("consume() got an unexpected keyword argument")) == UNKNOWN
    assert classify(PermanentError("unknown kind")) == PERMANENT
    assert classify(RuntimeError("a bug")) == UNKNOWN


class Broken(Worker):
    """A deploy gone wrong: every record fails the same way (a renamed field, say)."""

    group_id = "test-broken"
    retry_topic = None
    retry_backoff_s = 0.01

    def __init__(self, fixed_after: int) -> None:
        super().__init__()
        self.calls = 0
        self.fixed_after = fixed_after
        self.seen: list[str] = []

    def consume(self, records: list[Record]) -> None:
        self.calls += 1
        if self.calls <= self.fixed_after:
            raise TypeError("envelope_fields() missing 1 required keyword-only argument: 'room'")
        self.seen.extend(r.value["n"] for r in records)


@pytest.mark.django_db
def test_when_every_record_fails_alike_the_stream_is_held_not_dead_lettered(taps, monkeypatch):
    from streams.pipeline import worker as worker_module

    monkeypatch.setattr(worker_module.time, "sleep", lambda _s: None)  # the back-off, not the logic
    worker = Broken(fixed_after=60)
    for batch in range(4):
        worker.process(_numbers([f"{batch}-{i}" for i in range(4)]))
    # At most BREAKER_SAME - 1 records were set aside before the breaker saw the pattern; the
    # rest waited for the fix and went through in order.
    dead = taps[kafka.DLQ].records(3, timeout=2)
    assert len(dead) <= 2
    assert len(worker.seen) == 16 - len(dead)
    assert worker.seen == sorted(worker.seen, key=lambda n: tuple(map(int, n.split("-"))))


@pytest.mark.django_db
def test_a_record_re_driven_for_another_group_is_not_applied_again(taps):
    worker = Flaky()
    parked_by_index = {
        **kafka.envelope("message.send", room=7, body="index failed on me"),
        "failed_group": "chat-index",
    }
    mine = {**kafka.envelope("message.send", room=7, body="mine again"), "failed_group": "test-flaky"}
    worker.handle(
        [_raw(0, parked_by_index), _raw(1, mine), _raw(2, kafka.envelope("message.send", room=7, body="new"))]
    )
    assert worker.seen == ["mine again", "new"]
