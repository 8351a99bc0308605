"""Change capture keeps the backup database equal to the primary, replays included."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from backup import services
from backup.workers import BackupWorker
from chat_messages.services import message_apply_delete, message_apply_edit, messages_store, send_envelope
from rooms.services import participant_leave, room_delete
from streams.pipeline import kafka
from streams.pipeline.worker import Record
from tests.support import KafkaTap

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "backup"]),
    pytest.mark.kafka,
    pytest.mark.skipif(not services.backup_configured(), reason="no BACKUP_DATABASE_URL (make test provides one)"),
]


@pytest.fixture
def cdc():
    """A tap on the capture topic, on Kafka topics of the test's own.

    Own topics: a leave produces a system line to the message topic, and a persist consumer some
    other test of this worker started (the session's server) would store it while the backup is
    being compared, changing the primary after the capture was read.
    """
    with override_settings(KAFKA_TOPIC_PREFIX=f"backup-{uuid.uuid4().hex[:8]}-"):
        kafka.ensure_topics()
        tap = KafkaTap(kafka.CDC)
        yield tap
        tap.close()


def sync(tap: KafkaTap) -> list:
    """Publish everything captured, read it back from Kafka, apply it to the backup."""
    published = 0
    while (count := services.changes_publish()) > 0:
        published += count
    records = tap.records(published)
    assert len(records) == published
    if records:
        BackupWorker().consume(records)
    return records


def assert_same():
    report = services.backup_compare()
    assert [r["table"] for r in report if not r["same"]] == [], report


def test_the_backup_follows_inserts_updates_and_deletes_and_replays_converge(cdc, make_user, make_room):
    alice, bob, carol = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob, carol])
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=u.pk, client_msg_id=uuid.uuid4(), body=f"hi {i}")
                          for i, u in enumerate([alice, bob, carol, alice])])  # fmt: skip
    first = sync(cdc)
    assert_same()
    assert services.backup_compare()[3]["backup"][0] == 4  # chat_messages_message

    message_apply_edit(env={"room": room.pk, "seq": 1, "sender": alice.pk, "body": "edited"})
    message_apply_delete(env={"room": room.pk, "seq": 2, "sender": bob.pk})
    participant_leave(user_id=carol.pk, room_id=room.pk)
    second = sync(cdc)
    assert_same()

    # A consumer that crashed before committing gets everything again, in order: no change.
    BackupWorker().consume(first + second)
    assert_same()

    room_delete(user_id=alice.pk, room_id=room.pk)
    sync(cdc)
    assert_same()
    with connections["backup"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chat_messages_message")
        assert cursor.fetchone() == (0,)


def test_backup_verify_exits_0_when_equal_and_1_when_not(cdc, make_user, capsys):
    make_user()
    sync(cdc)
    call_command("backup_verify")
    assert "accounts_user" in capsys.readouterr().out

    with connections["backup"].cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET username = 'tampered'")
    with pytest.raises(SystemExit) as exited:
        call_command("backup_verify")
    assert exited.value.code == 1
    assert "DIFFERS" in capsys.readouterr().out


def test_a_change_for_an_unknown_table_is_dead_lettered_not_applied(cdc):
    bad = kafka.envelope("row.upsert", table="pg_authid", pk=1, row={"id": 1})
    dlq = KafkaTap(kafka.DLQ)
    try:
        BackupWorker().process([Record("chat.cdc", 0, 0, b"x", bad)])
        dead = dlq.records(1)
    finally:
        dlq.close()
    assert dead and "not a captured table" in dead[0].value["reason"]


@pytest.fixture
def capture_restored():
    yield
    services.capture_set(enabled=True)


def test_capture_off_records_nothing_and_migrate_turns_it_back_on_when_a_backup_is_configured(
    capture_restored, make_user, make_room
):
    from backup.models import ChangeEvent

    alice = make_user()
    room = make_room(owner=alice)
    ChangeEvent.objects.all().delete()

    assert sorted(services.capture_set(enabled=False)) == sorted(services.CAPTURED_TABLES)
    assert set(services.capture_enabled().values()) == {False}
    assert services.capture_set(enabled=False) == []  # nothing left to switch: no lock taken
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="x")])
    assert not ChangeEvent.objects.exists()

    call_command("migrate", verbosity=0)  # a deploy with BACKUP_DATABASE_URL set
    assert set(services.capture_enabled().values()) == {True}
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="y")])
    assert ChangeEvent.objects.filter(table_name="chat_messages_message").count() == 1


def test_changes_that_arrive_out_of_order_across_a_unique_key_still_converge(cdc, make_user):
    """A rename that frees a name and a newcomer taking it travel on different partitions: the
    newcomer may arrive first, which the backup's unique username refuses for a moment."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    old = make_user("alpha")
    sync(cdc)
    users.filter(pk=old.pk).update(username="beta", username_skeleton=None)
    newcomer = make_user("alpha")
    records = [r for r in _captured(cdc) if r.value.get("table") == "accounts_user"]
    rename = next(r for r in records if r.value["pk"] == old.pk)
    arrival = next(r for r in records if r.value["pk"] == newcomer.pk)

    BackupWorker().process([arrival, rename])  # the newcomer first

    assert_same()


def _captured(tap: KafkaTap) -> list:
    published = 0
    while (count := services.changes_publish()) > 0:
        published += count
    return tap.records(published)
