"""Operators see what was set aside: `manage.py dead_letters`."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import call_command

from streams.pipeline import kafka
from streams.pipeline.worker import Record, Worker

pytestmark = pytest.mark.kafka  # produces to or reads back from the broker


class Refuser(Worker):
    group_id = "test-refuser"

    def consume(self, records: list[Record]) -> None:
        raise AssertionError("not used")


@pytest.mark.django_db
def test_dead_letters_lists_each_record_with_its_group_origin_and_reason():
    marker = str(uuid.uuid4())
    envelope = kafka.envelope("message.send", room=42, sender=7, client_msg_id=marker, body="x")
    Refuser().dead_letter(b"42", envelope, reason=f"invalid: because {marker}", record=Record(
        "chat.messages", 3, 1234, b"42", envelope))  # fmt: skip

    out = io.StringIO()
    call_command("dead_letters", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if marker in line)
    assert "test-refuser message.send room=42 from chat.messages[3]@1234: invalid: because" in line

    out = io.StringIO()
    call_command("dead_letters", "--json", stdout=out)
    entry = next(json.loads(line) for line in out.getvalue().splitlines() if marker in line)
    assert entry["record"]["client_msg_id"] == marker and entry["failed_group"] == "test-refuser"
