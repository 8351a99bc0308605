"""The admin's Pipeline page: lag, dead letters with their reasons, re-drive and discard (audited)."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEntry
from streams.models import DeadLetterMark
from streams.pipeline import kafka
from streams.pipeline.dead_letters import dead_letters_list
from streams.pipeline.worker import Record, Worker
from tests.support import KafkaTap

# The page's sources are asked from threads of their own: they see only committed rows.
pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

PAGE = reverse("admin:ops_pipeline_changelist")


class IndexLike(Worker):
    """Sets records aside the way chat-index does (a group nobody follows)."""

    group_id = "chat-index"

    def consume(self, records: list[Record]) -> None:
        raise AssertionError("not used")


class PersistLike(Worker):
    group_id = "chat-persist"  # chat-index follows it

    def consume(self, records: list[Record]) -> None:
        raise AssertionError("not used")


def _dead_letter(worker: Worker, *, body: str, room: int = 42, offset: int = 7) -> dict:
    envelope = kafka.envelope("message.send", room=room, sender=1, client_msg_id=str(uuid.uuid4()), body=body)
    source = Record(kafka.topic(kafka.MESSAGES), 2, offset, str(room).encode(), envelope)
    worker.dead_letter(str(room).encode(), envelope, reason=f"PermanentError: {body} is bad", record=source)
    return envelope


def _letter(body: str):
    found = [x for x in dead_letters_list(last=100, handled=True) if x.record.get("body") == body]
    assert len(found) == 1, found
    return found[0]


def test_the_page_shows_each_groups_lag_and_the_beat_schedule(own_topics, operator):
    for i in range(3):
        kafka.produce(kafka.MESSAGES, key=str(i), value=kafka.envelope("message.send", room=i, body="x"))

    page = operator.get(PAGE)

    assert page.status_code == 200
    html = page.content.decode()
    # No consumer runs on these topics: chat-persist has not committed any of the three.
    row = re.search(rf"<td[^>]*>{own_topics}chat-persist</td><td[^>]*>{own_topics}chat.messages</td>"
                    r'<td class="lag"[^>]*>(\d+)</td>', html)  # fmt: skip
    assert row is not None, html
    assert int(row.group(1)) == 3
    assert "redrive-retry-topic" in html and "streams.tasks.redrive_retries" in html
    assert "0 record(s) on" in html  # the test's own dead-letter topic is empty


def test_a_redrive_from_the_admin_sends_the_record_back_and_is_audited(own_topics, operator):
    messages = KafkaTap(kafka.MESSAGES)
    try:
        envelope = _dead_letter(IndexLike(), body="index me again")
        letter = _letter("index me again")
        page = operator.get(PAGE).content.decode()
        assert "PermanentError: index me again is bad" in page and letter.digest in page

        answer = operator.post(
            PAGE,
            {"action": "redrive", "partition": letter.partition, "offset": letter.offset, "digest": letter.digest},
            follow=True,
        )

        assert answer.status_code == 200
        assert "re-driven" in answer.content.decode()
        back = [r for r in messages.records(1) if r.value.get("body") == "index me again"]
        assert len(back) == 1
        # Keyed as before, onto the topic it failed on, for the group that failed only.
        assert back[0].key == b"42" and back[0].topic == kafka.topic(kafka.MESSAGES)
        assert back[0].value["client_msg_id"] == envelope["client_msg_id"]
        assert back[0].value["failed_group"] == "chat-index"
    finally:
        messages.close()
    assert DeadLetterMark.objects.get(partition=letter.partition, offset=letter.offset).action == "redriven"
    entry = AuditEntry.objects.get(action="dead_letter.redriven")
    assert entry.actor == operator.user
    assert entry.target_type == "dead_letter"
    assert entry.target_id == f"{own_topics}chat.messages.dlq:{letter.partition}:{letter.offset}"
    assert entry.before["topic"] == f"{own_topics}chat.messages"
    assert (entry.before["partition"], entry.before["offset"]) == (2, 7)
    assert entry.before["reason"] == "PermanentError: index me again is bad"
    assert entry.after == {"handled": "redriven", "topic": "chat.messages"}
    # Handled: off the page's list (unless asked for), and a second re-drive is refused.
    assert "index me again is bad" not in operator.get(PAGE).content.decode()
    assert "index me again is bad" in operator.get(PAGE, {"handled": "1"}).content.decode()
    again = operator.post(
        PAGE,
        {"action": "redrive", "partition": letter.partition, "offset": letter.offset, "digest": letter.digest},
        follow=True,
    )
    assert "re-driven already" in again.content.decode()
    assert AuditEntry.objects.filter(action="dead_letter.redriven").count() == 1


def test_a_record_persist_set_aside_goes_back_to_every_group(own_topics, operator):
    """chat-index follows chat-persist: a send persist failed on was never indexed, so both read it again."""
    messages = KafkaTap(kafka.MESSAGES)
    try:
        _dead_letter(PersistLike(), body="store me again")
        letter = _letter("store me again")
        operator.post(
            PAGE, {"action": "redrive", "partition": letter.partition, "offset": letter.offset, "digest": letter.digest}
        )
        back = [r for r in messages.records(1) if r.value.get("body") == "store me again"]
    finally:
        messages.close()
    assert len(back) == 1 and "failed_group" not in back[0].value


def test_a_discard_from_the_admin_marks_the_record_and_is_audited(own_topics, operator):
    _dead_letter(IndexLike(), body="never mind", offset=9)
    letter = _letter("never mind")

    answer = operator.post(
        PAGE,
        {"action": "discard", "partition": letter.partition, "offset": letter.offset, "digest": letter.digest},
        follow=True,
    )

    assert "discarded" in answer.content.decode()
    assert DeadLetterMark.objects.get(partition=letter.partition, offset=letter.offset).action == "discarded"
    entry = AuditEntry.objects.get(action="dead_letter.discarded")
    assert entry.actor == operator.user
    assert entry.target_id == f"{own_topics}chat.messages.dlq:{letter.partition}:{letter.offset}"
    assert (entry.before["topic"], entry.before["partition"], entry.before["offset"]) == (
        f"{own_topics}chat.messages", 2, 9,
    )  # fmt: skip
    assert entry.before["reason"] == "PermanentError: never mind is bad"
    # Still on the topic, counted as handled; gone from the lists.
    assert [x for x in dead_letters_list(last=100) if x.record.get("body") == "never mind"] == []
    out = io.StringIO()
    call_command("dead_letters", stdout=out)
    assert "never mind is bad [discarded]" in out.getvalue()
    assert "1 record(s) on" in operator.get(PAGE).content.decode()
    assert ", 0 not re-driven or discarded" in operator.get(PAGE).content.decode()


def test_a_record_other_than_the_one_shown_is_not_touched(own_topics, operator):
    _dead_letter(IndexLike(), body="look first")
    letter = _letter("look first")

    answer = operator.post(
        PAGE,
        {"action": "discard", "partition": letter.partition, "offset": letter.offset, "digest": "0" * 32},
        follow=True,
    )

    assert "holds another record than the one shown" in answer.content.decode()
    assert not DeadLetterMark.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="dead_letter.").exists()


def test_staff_without_the_permission_cannot_act(own_topics, django_user_model, client):
    from django.contrib.auth.models import Permission

    _dead_letter(IndexLike(), body="hands off")
    letter = _letter("hands off")
    viewer = django_user_model.objects.create_user(username="viewer", password="x-long-enough", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pipeline"))
    client.force_login(viewer)

    page = client.get(PAGE)
    refused = client.post(
        PAGE, {"action": "discard", "partition": letter.partition, "offset": letter.offset, "digest": letter.digest}
    )

    assert page.status_code == 200 and "hands off is bad" in page.content.decode()
    assert 'value="discard"' not in page.content.decode()
    assert refused.status_code == 403
    assert not DeadLetterMark.objects.exists()


def test_the_page_says_what_is_unknown_when_the_broker_is_down(operator):
    from django.test import override_settings

    from tests.conftest import free_port

    with override_settings(METRICS_TIMEOUT_S=1.0, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}"):
        page = operator.get(PAGE)

    assert page.status_code == 200
    html = page.content.decode()
    assert "kafka: unknown (KafkaUnavailable: Kafka at 127.0.0.1:" in html
    assert "Count unknown:" in html
    assert "redrive-retry-topic" in html  # beat's schedule needs no broker
