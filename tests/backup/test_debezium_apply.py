"""The backup consumer applies Debezium's PostgreSQL events: recorded ones, in the documented format.

tests/backup/debezium/*.json are Kafka records as Debezium 2.7's PostgreSQL connector writes them
for our tables (https://debezium.io/documentation/reference/stable/connectors/postgresql.html,
"Data change events"), routed to ``chat.cdc``: ``snapshot.json`` the initial snapshot (``r``),
``conversation.json`` streaming creates, updates, deletes with their tombstones and a truncate,
``toast.json`` an update that leaves TOASTed columns out, ``schema_wrapped.json`` the form with
``value.converter.schemas.enable=true``. Each record: ``{"topic", "partition", "offset", "key",
"value"}``, key and value as the JSON converter writes them (a tombstone's value is null).
"""

from __future__ import annotations

import copy
import json
import uuid
import zlib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from backup import services
from backup.services import SchemaDrift
from backup.workers import BackupWorker
from streams.pipeline import kafka
from streams.pipeline.worker import SYSTEMIC, PermanentError, Raw, Record, classify
from tests.support import KafkaTap

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "backup"]),
    pytest.mark.skipif(not services.backup_configured(), reason="no BACKUP_DATABASE_URL (make test provides one)"),
]

RECORDED = Path(__file__).parent / "debezium"


def recorded(name: str) -> list[dict]:
    return json.loads((RECORDED / f"{name}.json").read_text())


def raws(items: list[dict]) -> list[Raw]:
    """The records as the consumer fetches them: bytes, a tombstone's value None."""
    return [
        Raw(
            i["topic"], i["partition"], i["offset"],
            None if i["key"] is None else json.dumps(i["key"]).encode(),
            None if i["value"] is None else json.dumps(i["value"]).encode(),
        )
        for i in items
    ]  # fmt: skip


def records(items: list[dict]) -> list[Record]:
    """The records as ``consume`` gets them (decoded; tombstones are skipped before it)."""
    return [
        Record(i["topic"], i["partition"], i["offset"], json.dumps(i["key"]).encode(), i["value"])
        for i in items
        if i["value"] is not None
    ]


def everything() -> list[dict]:
    return recorded("snapshot") + recorded("conversation") + recorded("toast") + recorded("schema_wrapped")


def row(table: str, pk: int) -> dict | None:
    with connections["backup"].cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])
        found = cursor.fetchone()
        return None if found is None else dict(zip([c.name for c in cursor.description], found, strict=True))


def jsonb(value):
    # Django's psycopg2 backend hands jsonb over as its text.
    return None if value is None else json.loads(value)


def backup_digest() -> list:
    """Row count and content digest of each captured table on the backup."""
    return [r["backup"] for r in services.backup_compare()]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_recorded_events_reach_the_backup_with_their_types():
    BackupWorker().consume(records(everything()))

    alice, bob, jimin = row("accounts_user", 9001), row("accounts_user", 9002), row("accounts_user", 9003)
    assert alice["username"] == "alice" and alice["is_active"] is True and alice["is_staff"] is False
    assert alice["last_login"] == datetime(2025, 12, 5, 3, 51, 2, 771820, tzinfo=UTC)
    assert bob["last_login"] == datetime(2025, 12, 5, 4, 2, 0, 1, tzinfo=UTC)  # the update after the snapshot
    assert jimin["username"] == "지민" and jimin["date_joined"] == datetime(2025, 12, 5, 3, 51, 17, 400, tzinfo=UTC)

    room = row("rooms_room", 9101)
    assert (room["name"], room["last_seq"], room["direct_key"]) == ("팀 회의", 3, None)
    assert room["last_message_at"] == datetime(2025, 12, 5, 4, 0, 30, 125000, tzinfo=UTC)
    assert row("rooms_participant", 9202)["mention_seqs"] == [1]
    assert row("rooms_participant", 9201)["mention_seqs"] == []
    assert row("rooms_participant", 9203) is None  # left: deleted, its before image carried nulls

    edited = row("chat_messages_message", 9301)
    assert edited["body"] == "@bob 회의는 4시로 바꿔요"
    assert edited["edited_at"] == datetime(2025, 12, 5, 4, 1, 12, 900441, tzinfo=UTC)
    assert edited["mentions"] == [9002] and edited["reply_to"] is None and edited["kind"] == "text"
    assert str(edited["client_msg_id"]) == "0f8b1c9e-4d1a-4c55-9a63-2f4b8d0e7a11"

    reply = row("chat_messages_message", 9302)
    # jsonb columns hold the document, not a JSON string of it (Debezium sends JSON as text).
    assert jsonb(reply["reply_to"]) == {
        "seq": 1, "body": "@bob 회의는 3시에 해요 🙂", "sender": {"id": 9001, "username": "alice"}, "deleted": False,
    }  # fmt: skip
    assert jsonb(reply["attachments"])[0] == {
        "id": 9501, "kind": "image", "name": "whiteboard.png", "content_type": "image/png",
        "size": 48213, "width": 1280, "height": 720,
    }  # fmt: skip
    assert reply["mentions"] is None and reply["created_at"] == datetime(2025, 12, 5, 3, 59, 41, tzinfo=UTC)
    with connections["backup"].cursor() as cursor:
        cursor.execute("SELECT jsonb_typeof(reply_to), reply_to->'sender'->>'username' FROM chat_messages_message"
                       " WHERE id = 9302")  # fmt: skip
        assert cursor.fetchone() == ("object", "alice")

    system = row("chat_messages_message", 9303)
    assert system["sender_id"] is None and system["kind"] == "system"
    assert jsonb(system["system"]) == {
        "by": {"id": 9001, "username": "alice"}, "user": {"id": 9003, "username": "지민"}, "event": "invited",
    }  # fmt: skip

    assert row("chat_messages_reaction", 9401) is None  # created, then taken back

    attachment = row("attachments_attachment", 9501)
    assert (attachment["width"], attachment["height"], attachment["size"]) == (1280, 720, 48213)
    assert attachment["attached_at"] == datetime(2025, 12, 5, 3, 59, 41, tzinfo=UTC)
    assert attachment["released_at"] is None

    saved = row("drawer_savedmessage", 9601)
    assert (saved["note"], saved["tags"]) == ("", [])  # the update after the create
    assert jsonb(saved["attachments"])[0]["name"] == "whiteboard.png"
    assert saved["message_created_at"] == datetime(2025, 12, 5, 3, 59, 41, tzinfo=UTC)


def test_an_update_keeps_the_backups_value_of_columns_debezium_could_not_read():
    created, updated = records(recorded("toast"))
    assert updated.value["after"]["body"] == services.DEBEZIUM_UNAVAILABLE
    with pytest.raises(PermanentError, match="the backup does not have"):
        BackupWorker().consume([updated])  # part of a row cannot make one
    BackupWorker().consume([created, updated])

    message = row("chat_messages_message", 9304)
    assert message["body"] == created.value["after"]["body"] and len(message["body"]) > 4000
    assert message["mentions"] == list(range(10_001, 10_401))  # not the placeholder's bytes
    assert jsonb(message["reply_to"])["deleted"] is True  # what did change is applied

    # The placeholder as a plain string in an array column (the app's own capture writes it so).
    again = copy.deepcopy(updated)
    again.value["after"]["mentions"] = services.DEBEZIUM_UNAVAILABLE
    again.value["after"]["reply_to"] = json.dumps({"seq": 2, "body": "", "deleted": True})
    BackupWorker().consume([again])
    message = row("chat_messages_message", 9304)
    assert message["mentions"] == list(range(10_001, 10_401)) and len(message["body"]) > 4000
    assert "sender" not in jsonb(message["reply_to"])


def test_replays_converge():
    """A consumer that crashed before committing gets a batch again; Debezium restarted from its
    last offset sends a suffix again: both apply over newer rows and end where they were."""
    items = everything()
    BackupWorker().consume(records(items))
    once = backup_digest()
    assert once[0][0] == 3  # accounts_user: three rows

    BackupWorker().consume(records(items))
    BackupWorker().consume(records(items[len(items) // 2 :]))
    assert backup_digest() == once


def test_order_is_kept_per_row_across_partitions():
    """Records of one row share a key, hence a partition; partitions interleave in any order."""
    items = everything()
    BackupWorker().consume(records(items))
    in_order = backup_digest()
    with connections["backup"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(services.CAPTURED_TABLES)} CASCADE")

    partitions: dict[int, list[dict]] = {}
    for item in items:
        key = json.dumps(item["key"], sort_keys=True).encode()
        partitions.setdefault(zlib.crc32(key) % 3, []).append(item)
    assert len(partitions) == 3
    for part in sorted(partitions, reverse=True):
        BackupWorker().consume(records(partitions[part]))
    assert backup_digest() == in_order

    # The order within a row is what decides: the create after the edit puts the old body back.
    create, edit = (r for r in records(recorded("conversation")) if r.key == b'{"id": 9301}')
    BackupWorker().consume([edit, create])
    assert row("chat_messages_message", 9301)["body"] == "@bob 회의는 3시에 해요 🙂"


def test_a_column_the_backup_does_not_have_fails_loudly():
    created = records(recorded("conversation"))[0]
    drifted = copy.deepcopy(created)
    drifted.value["after"]["pinned"] = True
    # Systemic, not the record's fault: raised as it is, so the loop holds the stream (every later
    # event of the table would fail alike) until the backup is migrated, instead of dead-lettering.
    with pytest.raises(SchemaDrift, match=r"chat_messages_message\.pinned") as raised:
        BackupWorker().consume([drifted])
    assert classify(raised.value) == SYSTEMIC
    assert row("chat_messages_message", 9301) is None  # nothing of it was applied, nothing dropped


def test_a_truncate_is_ignored_with_a_warning(caplog):
    conversation = recorded("conversation")
    reaction = next(i for i, r in enumerate(conversation) if r["key"] == {"id": 9401})
    BackupWorker().consume(records(conversation[: reaction + 1]))
    truncate = [r for r in conversation if r["value"] and r["value"]["op"] == "t"]
    assert len(truncate) == 1 and truncate[0]["key"] is None  # no key, no row: a whole table
    BackupWorker().consume(records(truncate))
    assert row("chat_messages_reaction", 9401) is not None
    assert "ignored a truncate of chat_messages_reaction" in caplog.text


@pytest.fixture
def dlq():
    """A tap on the dead-letter topic, on Kafka topics of the test's own."""
    with override_settings(KAFKA_TOPIC_PREFIX=f"dbz-{uuid.uuid4().hex[:8]}-"):
        kafka.ensure_topics()
        tap = KafkaTap(kafka.DLQ)
        yield tap
        tap.close()


@pytest.mark.kafka
def test_tombstones_are_skipped_and_an_unknown_table_is_dead_lettered_while_the_rest_applies(dlq):
    items = recorded("snapshot") + recorded("conversation")
    tombstones = [i for i in items if i["value"] is None]
    assert len(tombstones) == 2
    foreign = copy.deepcopy(items[0])
    foreign["value"]["source"]["table"] = "pg_authid"
    # The same key as the tombstones: a tombstone dead-lettered would reach the dead-letter
    # topic's partition before this record does.
    foreign["key"] = tombstones[-1]["key"]
    middle = len(items) // 2
    batch = raws(items[:middle] + [foreign] + items[middle:])

    BackupWorker().handle(batch)  # decode (tombstones skipped), then process the batch

    dead = dlq.records(1)
    assert len(dead) == 1
    assert dead[0].value["record"]["source"]["table"] == "pg_authid"
    assert "not a captured table" in dead[0].value["reason"]
    assert row("accounts_user", 9001) is not None  # before the bad record
    assert row("chat_messages_message", 9303) is not None  # after it
    assert row("chat_messages_reaction", 9401) is None and row("rooms_participant", 9203) is None


def test_values_are_converted_back_for_their_column_types():
    """Types our tables do not use yet, as Debezium's defaults write them, read by PostgreSQL."""
    cases = [
        (20_427, services.Column("date"), "date", date(2025, 12, 5)),
        (1_764_907_149_618_571, services.Column("timestamp", 6), "timestamp", datetime(2025, 12, 5, 3, 59, 9, 618571)),
        (1_764_907_149_618, services.Column("timestamp", 3), "timestamp(3)", datetime(2025, 12, 5, 3, 59, 9, 618000)),
        (14_349_618_571, services.Column("time", 6), "time", time(3, 59, 9, 618571)),
        (14_349_618, services.Column("time", 3), "time(3)", time(3, 59, 9, 618000)),
        (90_000_000, services.Column("interval"), "interval", timedelta(seconds=90)),
        ("3q2+7w==", services.Column("bytea"), "bytea", b"\xde\xad\xbe\xef"),
        ("2025-12-05T03:59:09.618571Z", services.Column("timestamptz", 6), "timestamptz",
         datetime(2025, 12, 5, 3, 59, 9, 618571, tzinfo=UTC)),
        ("12.50", services.Column("numeric"), "numeric", 12.5),
        ([20_427, None], services.Column("_date"), "date[]", [date(2025, 12, 5), None]),
    ]  # fmt: skip
    with connections["backup"].cursor() as cursor:
        for value, column, sql_type, expected in cases:
            literal = services.debezium_value(value, column)
            if isinstance(literal, list):
                literal = json.dumps(literal)
                cursor.execute(f"SELECT ARRAY(SELECT jsonb_array_elements_text(%s::jsonb))::{sql_type}", [literal])
            else:
                cursor.execute(f"SELECT %s::{sql_type}", [literal])
            got = cursor.fetchone()[0]
            assert (bytes(got) if sql_type == "bytea" else got) == expected, (value, sql_type, got)
    assert services.debezium_value(['{"a": 1}', "[2]"], services.Column("_jsonb")) == [{"a": 1}, [2]]
    assert services.debezium_value('"text"', services.Column("jsonb")) == "text"  # a JSON string scalar


def test_a_batch_of_many_images_of_a_few_rows_takes_a_few_statements_and_ends_at_the_last_images():
    """A steady chat's batch updates the same rooms and read positions again and again: each row is
    written once, with its last image, in one statement per table."""
    create, edit = (r for r in records(recorded("conversation")) if r.key == b'{"id": 9301}')
    batch = [create, edit] * 50

    with CaptureQueriesContext(connections["backup"]) as queries:
        BackupWorker().consume(batch)

    assert row("chat_messages_message", 9301)["body"] == edit.value["after"]["body"]
    assert len(queries) <= 5  # the transaction, its replica role, one upsert (not a hundred)
