"""Change capture from the WAL keeps the backup database equal to the primary, replays included.

Each test reads a replication slot and a publication of its own (slot names are shared by the
whole PostgreSQL cluster), on Kafka topics of its own, and drops them after.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from backup import services, slot
from backup.capture import capture_until_current, current_lsn
from backup.pgoutput import lsn_to_int
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

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cdc():
    """A slot, a publication and Kafka topics of the test's own; a tap on the capture topic.

    Own topics: a leave produces a system line to the message topic, and a persist consumer some
    other test of this worker started (the session's server) would store it while the backup is
    being compared, changing the primary after the capture was read.
    """
    name = f"t_{uuid.uuid4().hex[:10]}"
    with override_settings(KAFKA_TOPIC_PREFIX=f"backup-{name}-", CHAT_CAPTURE_SLOT=name, CHAT_CAPTURE_PUBLICATION=name):
        kafka.ensure_topics()
        tap = KafkaTap(kafka.CDC)
        try:
            yield tap
        finally:
            tap.close()
            _slot_gone()


def _slot_gone() -> None:
    """Drop the test's slot (it would retain WAL for ever) once no capture holds it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            slot.slot_drop()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    slot.publication_drop()


def sync(tap: KafkaTap) -> list:
    """Capture everything committed, read it back from Kafka, apply it to the backup."""
    published = capture_until_current()
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
    assert {r.value["op"] for r in second} >= {"u", "d"}
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


def test_rows_there_before_capture_began_arrive_by_the_snapshot(cdc, make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=bob.pk, client_msg_id=uuid.uuid4(), body="회의")])
    assert not slot.slot_exists()

    records = sync(cdc)  # the slot is created now, with its snapshot

    assert {r.value["op"] for r in records} == {"r"}
    assert {r.value["source"]["table"] for r in records} >= {"accounts_user", "rooms_room", "chat_messages_message"}
    assert json.loads(records[0].key) == {"id": records[0].value["after"]["id"]}
    assert_same()
    assert sync(cdc) == []  # nothing new since: the stream starts where the snapshot ended


def test_an_account_deletion_reaches_the_backup(cdc, make_user, make_room):
    from accounts.services import account_delete

    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=bob.pk, client_msg_id=uuid.uuid4(), body="bye")])
    sync(cdc)

    account_delete(user=bob, erase_messages=True)
    sync(cdc)

    assert_same()
    with connections["backup"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_user WHERE id = %s", [bob.pk])
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT sender_id, body FROM chat_messages_message")
        assert cursor.fetchall() == [(None, "")]


def test_capture_costs_the_write_path_nothing(cdc):
    """No trigger and no outbox table on the chat tables: the WAL is written anyway."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'backup\\_capture\\_%%'")
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT to_regclass('backup_changeevent')")
        assert cursor.fetchone() == (None,)


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
    bad = {
        "before": None,
        "after": {"id": 1},
        "op": "c",
        "ts_ms": 1,
        "source": {"table": "pg_authid", "schema": "public"},
    }
    dlq = KafkaTap(kafka.DLQ)
    try:
        BackupWorker().process([Record("chat.cdc", 0, 0, b'{"id":1}', bad)])
        dead = dlq.records(1)
    finally:
        dlq.close()
    assert dead and "not a captured table" in dead[0].value["reason"]


def test_changes_that_arrive_out_of_order_across_a_unique_key_still_converge(cdc, make_user):
    """A rename that frees a name and a newcomer taking it travel on different partitions: the
    newcomer may arrive first, which the backup's unique username refuses for a moment."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    old = make_user("alpha")
    sync(cdc)
    users.filter(pk=old.pk).update(username="beta", username_skeleton=None)
    newcomer = make_user("alpha")
    records = [r for r in cdc.records(capture_until_current()) if r.value["source"]["table"] == "accounts_user"]
    rename = next(r for r in records if r.value["after"]["id"] == old.pk)
    arrival = next(r for r in records if r.value["after"]["id"] == newcomer.pk)

    BackupWorker().process([arrival, rename])  # the newcomer first

    assert_same()


def test_a_key_freed_in_another_batch_still_converges(cdc, make_user, make_room):
    """A reaction taken back and given again: the delete and the new row travel on different
    partitions, and the new row may come in a batch of its own, before the delete. It is not
    dead-lettered (lost for good): the stale row that held the key goes, its delete is a no-op
    when it comes. The same for a name freed by a rename, each change in its own batch."""
    from django.contrib.auth import get_user_model

    from chat_messages.services import reaction_set

    alice = make_user()
    room = make_room(owner=alice)
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="x")])
    reaction_set(user=alice, room_id=room.pk, seq=1, emoji="👍", on=True)
    old = make_user("alpha")
    sync(cdc)
    reaction_set(user=alice, room_id=room.pk, seq=1, emoji="👍", on=False)
    reaction_set(user=alice, room_id=room.pk, seq=1, emoji="👍", on=True)
    get_user_model().objects.filter(pk=old.pk).update(username="beta", username_skeleton=None)
    newcomer = make_user("alpha")
    records = cdc.records(capture_until_current())
    reactions = [r for r in records if r.value["source"]["table"] == "chat_messages_reaction"]
    users = [r for r in records if r.value["source"]["table"] == "accounts_user"]
    gone = next(r for r in reactions if r.value["op"] == "d")
    again = next(r for r in reactions if r.value["op"] == "c")
    rename = next(r for r in users if r.value["after"]["id"] == old.pk)
    arrival = next(r for r in users if r.value["after"]["id"] == newcomer.pk)
    dlq = KafkaTap(kafka.DLQ)
    try:
        for batch in ([again], [arrival], [gone], [rename]):  # each the other way round, alone
            BackupWorker().process(batch)
        assert dlq.records(1, timeout=2) == []
    finally:
        dlq.close()
    assert_same()


def test_the_slot_reports_its_retained_wal_and_warns_past_the_limit(cdc, make_user, caplog):
    make_user()
    sync(cdc)
    make_user()  # written, not captured yet
    written = current_lsn()

    status = slot.slot_status()
    assert status.exists and not status.active
    assert status.lag_bytes > 0 and status.retained_bytes >= status.lag_bytes
    with override_settings(CHAT_CAPTURE_WAL_WARN_BYTES=0), caplog.at_level(logging.WARNING, logger="backup.slot"):
        assert slot.slot_warn_if_over().over_limit
    assert "retains" in caplog.text and "capture_slot drop" in caplog.text

    sync(cdc)
    # Confirmed past that write (the lag itself also counts WAL written since, by anything).
    assert lsn_to_int(status.confirmed_flush_lsn) < written <= lsn_to_int(slot.slot_status().confirmed_flush_lsn)
    call_command("capture_slot", "drop", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert not slot.slot_exists()


# -- processes killed, the backup away -------------------------------------------------------------
def _env(name: str) -> dict:
    db, backup = settings.DATABASES["default"], settings.DATABASES["backup"]
    url = "postgres://{USER}@{HOST}:{PORT}/{NAME}"
    return {
        **os.environ,
        "DATABASE_URL": url.format(**db),
        "BACKUP_DATABASE_URL": url.format(**backup),
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "KAFKA_TOPIC_PREFIX": settings.KAFKA_TOPIC_PREFIX,
        "CAPTURE_SLOT": name,
        "CAPTURE_PUBLICATION": name,
        "PYTHONUNBUFFERED": "1",
    }


def _start(kind: str, env: dict, log: Path) -> subprocess.Popen:
    argv = {"capture": ["capture_changes"], "backup": ["consume", "backup"]}[kind]
    return subprocess.Popen(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def _write(rooms, users, n: int) -> None:
    for i in range(n):
        room = rooms[i % len(rooms)]
        sender = users[i % len(users)]
        messages_store(sends=[send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(),
                                            body=f"m {i}") for _ in range(5)])  # fmt: skip


def _same_within(seconds: float) -> list:
    deadline = time.monotonic() + seconds
    while True:
        report = services.backup_compare()
        different = [r for r in report if not r["same"]]
        if not different or time.monotonic() > deadline:
            return different
        time.sleep(0.5)


def test_kill_9_of_capture_and_of_the_backup_consumer_and_the_backup_away_converge(cdc, make_user, make_room, tmp_path):
    users = [make_user() for _ in range(3)]
    rooms = [make_room(owner=users[0], members=users[1:]) for _ in range(3)]
    env = _env(settings.CHAT_CAPTURE_SLOT)
    processes = {kind: _start(kind, env, tmp_path / f"{kind}.log") for kind in ("capture", "backup")}
    try:
        _write(rooms, users, 20)
        for kind in ("capture", "backup"):  # mid-stream: writes go on while each is down
            processes[kind].send_signal(signal.SIGKILL)
            processes[kind].wait(10)
            _write(rooms, users, 20)
            processes[kind] = _start(kind, env, tmp_path / f"{kind}.log")
            _write(rooms, users, 20)

        # The backup database refuses connections for a while: the consumer waits, loses nothing.
        backup_name = settings.DATABASES["backup"]["NAME"]
        with connections["default"].cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{backup_name}" ALLOW_CONNECTIONS false')
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [backup_name],
            )
        connections["backup"].close()
        try:
            _write(rooms, users, 20)
            time.sleep(3)
        finally:
            with connections["default"].cursor() as cursor:
                cursor.execute(f'ALTER DATABASE "{backup_name}" ALLOW_CONNECTIONS true')
        _write(rooms, users, 20)

        different = _same_within(90)
        logs = {kind: (tmp_path / f"{kind}.log").read_text()[-3000:] for kind in processes}
        assert different == [], logs
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_the_admin_page_shows_the_slot_and_warns_past_the_limit(cdc, admin_client, make_user):
    make_user()
    sync(cdc)
    page = admin_client.get("/admin/backup/replicationslot/").content.decode()
    assert "Change capture" in page and settings.CHAT_CAPTURE_SLOT in page and "WAL retained" in page
    assert "more than" not in page
    with override_settings(CHAT_CAPTURE_WAL_WARN_BYTES=0):
        make_user()  # WAL the slot has not confirmed
        page = admin_client.get("/admin/backup/replicationslot/").content.decode()
    assert "is <code>manage.py capture_changes</code> running?" in page
    assert admin_client.get("/admin/backup/replicationslot/add/").status_code == 403


def _wait_for(check, what: str, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def test_a_capture_killed_during_its_snapshot_leaves_no_slot_and_the_next_snapshots_again(
    cdc, make_user, make_room, tmp_path
):
    """Rows the snapshot had not published when capture died must still reach the backup: a slot
    left behind would make the next capture stream from it and never publish them."""
    from streams.management.commands.drain import capture_behind
    from tests.conftest import free_port

    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=bob.pk, client_msg_id=uuid.uuid4(), body="before")])
    # A broker nobody answers at: the slot is made, the snapshot's first rows wait for their acks.
    env = {**_env(settings.CHAT_CAPTURE_SLOT), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "KAFKA_PRODUCE_TIMEOUT_S": "300"}  # fmt: skip
    capture = _start("capture", env, tmp_path / "capture.log")
    try:

        def slots() -> list:
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE %s", [f"{slot.slot_name()}%"]
                )
                return cursor.fetchall()

        _wait_for(slots, "capture to create its slot")
        status = slot.slot_status()
        assert status.snapshot and not status.exists and status.retained_bytes > 0
        # Meanwhile the drain knows capture has not caught up, and a second capture does not start.
        assert capture_behind(None, timeout=5)[0] > 0
        with pytest.raises(Exception, match="already exists|is active"):
            capture_until_current(timeout=5)

        capture.send_signal(signal.SIGKILL)
        capture.wait(10)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait(10)

    _wait_for(lambda: not slots(), "the killed capture's slot to go")
    tap = KafkaTap(kafka.CDC)
    try:
        sync(tap)
    finally:
        tap.close()
    assert_same()


def test_a_transaction_larger_than_a_batch_is_published_in_parts_and_confirmed_at_its_end(cdc, make_user, make_room):
    """Capture holds at most a batch of events, so a transaction of millions of rows (a big room
    deleted) need not fit in its memory; the transaction's end is confirmed only once all of it is
    published, so capture dying in the middle replays it whole."""
    from backup.capture import Capture

    alice = make_user()
    room = make_room(owner=alice)
    sync(cdc)
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body=f"{i}")
                          for i in range(40)])  # fmt: skip
    target = current_lsn()
    capture, held = Capture(batch_events=10), []
    deadline = time.monotonic() + 30
    capture.connect()
    try:
        capture.prepare()
        capture.start()

        def running() -> bool:
            held.append(len(capture.ready) + len(capture.open))
            # Stop (as a crash would) once part of the transaction is out, before its end.
            return time.monotonic() < deadline and not (capture.published and capture.begin is not None)

        capture.run(running=running, until_lsn=target)
    finally:
        capture.close()
    assert max(held) <= 10
    assert capture.published and lsn_to_int(slot.slot_status().confirmed_flush_lsn) < target

    replayed = capture_until_current()
    assert replayed > capture.published
    BackupWorker().consume(cdc.records(capture.published + replayed))
    assert_same()


def test_a_change_put_off_by_a_unique_key_stays_before_the_same_rows_later_changes(cdc, make_user):
    """The newcomer that must wait for the rename is renamed again later in the batch: applying
    that later change first, then the put-off one, would leave the backup with its older name."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    old = make_user("alpha")
    sync(cdc)
    users.filter(pk=old.pk).update(username="beta", username_skeleton=None)
    newcomer = make_user("alpha")
    users.filter(pk=newcomer.pk).update(username="gamma", username_skeleton=None)
    records = [r for r in cdc.records(capture_until_current()) if r.value["source"]["table"] == "accounts_user"]
    rename = next(r for r in records if r.value["after"]["id"] == old.pk)
    arrival, renamed = (r for r in records if r.value["after"]["id"] == newcomer.pk)

    BackupWorker().process([arrival, renamed, rename])  # the newcomer's two first

    assert_same()


def test_capture_connects_with_the_database_settings_as_given(cdc):
    """The replication connection takes the default database's parameters escaped (a quote or a
    backslash in a user name or password) and with its OPTIONS (sslmode, application_name...),
    and reads dates and times in the ISO style debezium.py parses whatever the server's default."""
    from backup.capture import Capture

    default = connections["default"]
    role = "capture'o\\brien"
    with default.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN REPLICATION')
        cursor.execute(f"ALTER ROLE \"{role}\" SET DateStyle = 'SQL, DMY'")
    saved = {key: default.settings_dict[key] for key in ("USER", "PASSWORD", "OPTIONS")}
    capture = Capture()
    try:
        default.settings_dict.update(USER=role, PASSWORD="it's \\ secret",
                                     OPTIONS={**saved["OPTIONS"], "application_name": "capture's test"})  # fmt: skip
        capture.connect()
        capture.cursor.execute("SHOW DateStyle")
        assert capture.cursor.fetchone()[0].startswith("ISO")
        with default.cursor() as cursor:
            cursor.execute("SELECT application_name FROM pg_stat_activity WHERE usename = %s", [role])
            assert cursor.fetchall() == [("capture's test",)]
    finally:
        default.settings_dict.update(saved)
        capture.close()
        with default.cursor() as cursor:
            _wait_for(lambda: not _sessions_of(cursor, role), "the capture session to end")
            cursor.execute(f'DROP ROLE "{role}"')


def _sessions_of(cursor, role: str) -> int:
    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role])
    return cursor.fetchone()[0]


def test_the_snapshot_reads_times_in_the_style_debezium_events_need(cdc, make_user):
    """Timestamps as Debezium writes them (ISO 8601 in UTC), whatever DateStyle the database
    connection that reads the snapshot has."""
    user = make_user()
    with connections["default"].cursor() as cursor:
        cursor.execute("SET DateStyle = 'SQL, DMY'")
    try:
        records = sync(cdc)
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute("RESET DateStyle")
    joined = next(r.value["after"]["date_joined"] for r in records if r.value["after"]["id"] == user.pk
                  and r.value["source"]["table"] == "accounts_user")  # fmt: skip
    assert joined == user.date_joined.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert_same()


def test_capture_confirms_nothing_the_broker_did_not_acknowledge(cdc, make_user):
    """Publishing fails: the slot must give those changes again to the next capture."""
    from tests.conftest import free_port

    make_user()
    sync(cdc)
    user = make_user()
    kafka.reset_producer()  # the next one connects where the settings below say
    try:
        with (
            override_settings(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", KAFKA_PRODUCE_TIMEOUT_S=1.0),
            pytest.raises(kafka.KafkaUnavailable),
        ):
            capture_until_current(timeout=20)
    finally:
        kafka.reset_producer()

    records = sync(cdc)
    users = [r.value for r in records if r.value["source"]["table"] == "accounts_user"]
    assert [(u["op"], u["after"]["id"]) for u in users] == [("c", user.pk)]
    assert_same()


def test_an_event_from_before_a_column_was_added_applies_after_the_backup_has_it(cdc, make_user, make_room):
    """Changes captured before a migration added a column (with a database default), applied once
    the backup has it too: a new row takes the default, an existing row keeps its value."""
    from rooms.models import Room

    def before_the_column(records):
        for r in records:
            if r.value["source"]["table"] == "rooms_room":
                del r.value["after"]["legal_hold"]
        return records

    room = make_room(owner=make_user())
    BackupWorker().process(before_the_column(cdc.records(capture_until_current())))
    assert_same()

    Room.objects.filter(pk=room.pk).update(legal_hold=True)
    sync(cdc)
    Room.objects.filter(pk=room.pk).update(name="renamed")
    BackupWorker().process(before_the_column(cdc.records(capture_until_current())))
    assert_same()
