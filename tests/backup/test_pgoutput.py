"""The pgoutput decoder and the Debezium events, on bytes the embedded PostgreSQL wrote.

Each database test makes a publication and a logical slot of its own (slot names are cluster-wide,
so they carry a random suffix: the xdist workers share the cluster) and drops both in teardown: a
slot left behind holds WAL for ever. A slot cannot be made in a transaction that has written,
hence ``transaction=True``. A few hand-built messages cover what one cluster does not send: the
protocol 2 streaming forms, binary values and malformed input.
"""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, date, datetime

import pytest
from django.db import connection

from backup import debezium, pgoutput
from backup.debezium import UNAVAILABLE, EventStream, parse_array, to_json
from backup.pgoutput import (
    UNCHANGED,
    Begin,
    Binary,
    Commit,
    DecodeError,
    Delete,
    Insert,
    Message,
    Origin,
    Relation,
    StreamAbort,
    StreamCommit,
    StreamStart,
    StreamStop,
    Truncate,
    Type,
    Update,
    decode,
)
from backup.tables import CAPTURED_TABLES

CAPTURED_MS = 1_800_000_000_123


class Slot:
    """A publication on ``tables`` and a pgoutput slot reading it; ``changes()`` consumes what it has."""

    def __init__(self, tables: list[str]) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.slot, self.publication = f"test_pgo_{suffix}", f"pub_pgo_{suffix}"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE PUBLICATION {self.publication} FOR TABLE {', '.join(tables)}")
            cursor.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [self.slot])

    def raw(self, *, messages: bool = False) -> list[tuple[int, int, bytes]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT lsn::text, xid::text::bigint, data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL,"
                " 'proto_version', '1', 'publication_names', %s, 'messages', %s)",
                [self.slot, self.publication, "true" if messages else "false"],
            )
            return [(pgoutput.lsn_to_int(lsn), xid, bytes(data)) for lsn, xid, data in cursor.fetchall()]

    def changes(self, **kwargs) -> list[tuple[int, int, pgoutput.PgOutputMessage]]:
        return [(lsn, xid, decode(data)) for lsn, xid, data in self.raw(**kwargs)]

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_drop_replication_slot(%s)", [self.slot])
            cursor.execute(f"DROP PUBLICATION {self.publication}")


@pytest.fixture
def probe(transactional_db):
    """A table of every kind of column the chat tables use, its slot, and the statements' SQL cursor."""
    table = f"pgo_probe_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (id bigserial PRIMARY KEY, body text, note text, meta jsonb, mentions int8[],"
            " tags varchar[], at timestamptz, ok bool, day date, n int4, small int2, key uuid, at3 timestamptz(3))"
        )
        # Stored out of line uncompressed: a long body is TOASTed whatever its content.
        cursor.execute(f"ALTER TABLE {table} ALTER body SET STORAGE EXTERNAL")
    slot = Slot([table])
    try:
        yield table, slot
    finally:
        slot.drop()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")


def kinds(changes) -> list[str]:
    return [type(message).__name__ for _, _, message in changes]


def events(changes, *, db_name: str = "chat") -> list[tuple[dict, dict]]:
    stream = EventStream(db_name=db_name)
    found = [stream.feed(lsn, message, captured_ms=CAPTURED_MS) for lsn, _, message in changes]
    return [e for e in found if e is not None]


LONG = "회의는 3시 " * 2000  # 14,000 characters, 40 KB of UTF-8: TOASTed
TAGS = ["a,b", "회의", None, "", "NULL", 'say "hi"', "back\\slash", " spaced ", "{brace}"]
TAGS_TEXT = '{"a,b",회의,NULL,"","NULL","say \\"hi\\"","back\\\\slash"," spaced ","{brace}"}'.encode()
KEY = uuid.UUID("6f1c8a36-1d4b-4b8e-9a53-0d5d2b7e4c11")


@pytest.mark.django_db(transaction=True)
def test_inserts_updates_and_deletes_decode_and_become_debezium_events(probe):
    table, slot = probe
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        (started,) = cursor.fetchone()
        cursor.execute("BEGIN")
        cursor.execute(
            f"INSERT INTO {table} (body, note, meta, mentions, tags, at, ok, day, n, small, key, at3)"
            " VALUES (%s, NULL, %s, '{1,NULL,9007199254740993}', %s, '2026-12-05 12:59:09.618571+09', true,"
            " '2026-12-05', -5, 3, %s, '2026-12-05 03:59:09.5+00') RETURNING id",
            [LONG, '{"a": [1, "회의"], "b": null}', TAGS, KEY],
        )
        (first,) = cursor.fetchone()
        cursor.execute(f"INSERT INTO {table} (body, mentions, tags) VALUES ('short', '{{}}', '{{}}') RETURNING id")
        (second,) = cursor.fetchone()
        cursor.execute("COMMIT")
        cursor.execute(f"UPDATE {table} SET ok = false, note = 'x' WHERE id = %s", [first])
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [second])
        cursor.execute("SELECT clock_timestamp()")
        (finished,) = cursor.fetchone()
        cursor.execute("SELECT %s::regclass::oid, attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass"
                       " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [table, table])  # fmt: skip
        catalog = cursor.fetchall()
        # The output functions run in the decoding session: timestamptz comes out in its TimeZone.
        cursor.execute("SET TIME ZONE 'Asia/Seoul'")
        try:
            changes = slot.changes()
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")

    assert kinds(changes) == ["Begin", "Relation", "Insert", "Insert", "Commit",
                              "Begin", "Update", "Commit", "Begin", "Delete", "Commit"]  # fmt: skip
    # Transactions: the xid and LSNs agree with what the slot function reports beside each message.
    for start in (0, 5, 8):
        end = start + (4 if start == 0 else 2)
        (_, xid, begin), (commit_row_lsn, _, commit) = changes[start], changes[end]
        assert isinstance(begin, Begin) and isinstance(commit, Commit)
        assert begin.xid == xid and all(x == xid for _, x, _ in changes[start : end + 1])
        assert begin.final_lsn == commit.commit_lsn < commit.end_lsn == commit_row_lsn
        assert begin.commit_ts == commit.commit_ts and started <= commit.commit_ts <= finished
        assert commit.commit_ts.tzinfo is UTC and commit.flags == 0
    assert changes[0][1] < changes[5][1] < changes[8][1]

    relation = changes[1][2]
    assert isinstance(relation, Relation)
    assert (relation.oid, relation.namespace, relation.name, relation.replica_identity) == (
        catalog[0][0],
        "public",
        table,
        "d",
    )
    assert [(c.name, c.type_oid) for c in relation.columns] == [(name, oid) for _, name, oid in catalog]
    assert [c.name for c in relation.columns if c.key] == ["id"]
    # The catalog gives the same Relation, for rows a snapshot reads outside the stream.
    with connection.cursor() as cursor:
        assert pgoutput.relation_of(cursor, table) == relation
    assert relation.columns[-1].typmod == 3 and relation.columns[6].typmod == -1

    insert = changes[2][2]
    assert isinstance(insert, Insert) and insert.relation_oid == relation.oid and insert.xid is None
    assert insert.new == (
        str(first).encode(), LONG.encode(), None, b'{"a": [1, "\xed\x9a\x8c\xec\x9d\x98"], "b": null}',
        b"{1,NULL,9007199254740993}",
        TAGS_TEXT,
        b"2026-12-05 12:59:09.618571+09", b"t", b"2026-12-05", b"-5", b"3", str(KEY).encode(), b"2026-12-05 12:59:09.5+09",
    )  # fmt: skip
    update = changes[6][2]
    assert isinstance(update, Update) and update.old is None and update.old_kind is None
    assert update.new[1] is UNCHANGED  # the body was not touched: pgoutput does not send it again
    assert (update.new[0], update.new[2], update.new[7]) == (str(first).encode(), b"x", b"f")
    delete = changes[9][2]
    assert isinstance(delete, Delete) and delete.old_kind == "K"
    assert delete.old == (str(second).encode(),) + (None,) * (len(relation.columns) - 1)

    created, _, updated, deleted = events(changes, db_name="test_chat")
    key, value = created
    assert key == {"id": first}
    assert value["after"] == {
        "id": first, "body": LONG, "note": None, "meta": '{"a": [1, "회의"], "b": null}',
        "mentions": [1, None, 9007199254740993], "tags": TAGS, "at": "2026-12-05T03:59:09.618571Z", "ok": True,
        "day": (date(2026, 12, 5) - date(1970, 1, 1)).days, "n": -5, "small": 3, "key": str(KEY),
        "at3": "2026-12-05T03:59:09.500Z",
    }  # fmt: skip
    assert (value["before"], value["op"], value["ts_ms"], value["transaction"]) == (None, "c", CAPTURED_MS, None)
    begin = changes[0][2]
    assert value["source"] == {
        "version": "2.7.0.Final", "connector": "postgresql", "name": "chat",
        "ts_ms": begin.commit_ms, "snapshot": "false", "db": "test_chat",
        "sequence": json.dumps([None, str(changes[2][0])]),
        "ts_us": begin.commit_ms * 1000, "ts_ns": begin.commit_ms * 1_000_000,
        "schema": "public", "table": table, "txId": begin.xid, "lsn": changes[2][0], "xmin": None,
    }  # fmt: skip

    key, value = updated
    assert key == {"id": first} and value["op"] == "u" and value["before"] is None
    assert value["after"]["body"] == UNAVAILABLE
    assert (value["after"]["ok"], value["after"]["note"], value["after"]["meta"]) == (
        False,
        "x",
        created[1]["after"]["meta"],
    )
    # The second transaction's events carry the first one's commit LSN as Debezium's "last committed".
    assert json.loads(value["source"]["sequence"]) == [str(changes[4][2].commit_lsn), str(changes[6][0])]
    assert value["source"]["txId"] == changes[5][1]

    key, value = deleted
    assert key == {"id": second} and value["op"] == "d" and value["after"] is None
    assert value["before"] == {"id": second} | {c.name: None for c in relation.columns[1:]}
    # Every event is plain JSON.
    for key, value in (created, updated, deleted):
        assert json.loads(json.dumps(value)) == value and json.loads(json.dumps(key)) == key


@pytest.mark.django_db(transaction=True)
def test_the_array_text_postgresql_writes_parses_back_to_the_same_values(probe):
    table, slot = probe
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (tags, mentions) VALUES (%s, %s)", [TAGS, [-1, 0, None, 2**63 - 1]])
        cursor.execute(f"INSERT INTO {table} (tags, mentions) VALUES ('{{{{a,b}},{{NULL,\"}}\"}}}}', '[0:1]={{7,8}}')")
    rows = [m for _, _, m in slot.changes() if isinstance(m, Insert)]
    assert [(r.new[5], r.new[4]) for r in rows] == [
        (TAGS_TEXT, b"{-1,0,NULL,9223372036854775807}"),
        (b'{{a,b},{NULL,"}"}}', b"[0:1]={7,8}"),
    ]  # fmt: skip
    assert to_json(1015, rows[0].new[5].decode()) == TAGS
    assert to_json(1016, rows[0].new[4].decode()) == [-1, 0, None, 2**63 - 1]
    assert to_json(1015, rows[1].new[5].decode()) == [["a", "b"], [None, "}"]]
    assert to_json(1016, rows[1].new[4].decode()) == [7, 8]


@pytest.mark.django_db(transaction=True)
def test_type_origin_truncate_and_message_as_postgresql_sends_them(probe):
    table, slot = probe
    suffix = uuid.uuid4().hex[:8]
    mood, other, origin = f"mood_{suffix}", f"pgo_other_{suffix}", f"pgo_origin_{suffix}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TYPE {mood} AS ENUM ('calm', '회의 중')")
        cursor.execute(f"CREATE TABLE {other} (id bigserial PRIMARY KEY, mood {mood})")
        cursor.execute(f"ALTER PUBLICATION {slot.publication} ADD TABLE {other}")
        cursor.execute("SELECT %s::regclass::oid, %s::regclass::oid, %s::regtype::oid", [table, other, mood])
        table_oid, other_oid, mood_oid = cursor.fetchone()
        try:
            cursor.execute(f"INSERT INTO {other} (mood) VALUES ('회의 중')")
            # A change applied on behalf of another server carries its replication origin.
            cursor.execute("SELECT pg_replication_origin_create(%s)", [origin])
            cursor.execute("SELECT pg_replication_origin_session_setup(%s)", [origin])
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_replication_origin_xact_setup('1/ABCDEF', now())")
            cursor.execute(f"INSERT INTO {table} (body) VALUES ('from elsewhere')")
            cursor.execute("COMMIT")
            cursor.execute("SELECT pg_replication_origin_session_reset()")
            cursor.execute(f"TRUNCATE {table}, {other} RESTART IDENTITY CASCADE")
            cursor.execute("SELECT pg_logical_emit_message(true, 'chat', '회의')")
            # Outside a transaction nothing flushes the WAL for it: the slot function reads only
            # what is flushed, so the message asks for it (the flush argument, PostgreSQL 17+).
            cursor.execute("SELECT pg_logical_emit_message(false, 'chat', %s::bytea, true)", [b"\x00\xff"])
            changes = slot.changes(messages=True)
        finally:
            cursor.execute("ROLLBACK")  # after a failure inside the BEGIN above; a no-op otherwise
            cursor.execute(
                "SELECT pg_replication_origin_session_reset() WHERE pg_replication_origin_session_is_setup()"
            )
            cursor.execute("SELECT pg_replication_origin_drop(%s) FROM pg_replication_origin WHERE roname = %s",
                           [origin, origin])  # fmt: skip
            cursor.execute(f"ALTER PUBLICATION {slot.publication} DROP TABLE {other}")
            cursor.execute(f"DROP TABLE {other}")
            cursor.execute(f"DROP TYPE {mood}")

    # A type of the database's own is named (Type) before the first Relation that uses it.
    typed = changes[1:4]
    assert kinds(typed) == ["Type", "Relation", "Insert"]
    assert typed[0][2] == Type(oid=mood_oid, namespace="public", name=mood)
    assert typed[1][2].columns[1].type_oid == mood_oid
    assert typed[2][2].new[1] == "회의 중".encode()
    assert events(changes[:5])[0][1]["after"] == {"id": 1, "mood": "회의 중"}  # unknown types pass as text

    origins = [m for _, _, m in changes if isinstance(m, Origin)]
    assert origins == [Origin(origin_lsn=pgoutput.lsn_to_int("1/ABCDEF"), name=origin)]
    index = next(i for i, (_, _, m) in enumerate(changes) if isinstance(m, Origin))
    assert kinds(changes[index - 1 : index + 4]) == ["Begin", "Origin", "Relation", "Insert", "Commit"]

    truncates = [m for _, _, m in changes if isinstance(m, Truncate)]
    assert len(truncates) == 1
    assert set(truncates[0].relation_oids) == {table_oid, other_oid}
    assert truncates[0].options == pgoutput.TRUNCATE_CASCADE | pgoutput.TRUNCATE_RESTART_IDENTITY

    messages = [(lsn, m) for lsn, _, m in changes if isinstance(m, Message)]
    assert [(m.transactional, m.prefix, m.content) for _, m in messages] == [
        (True, "chat", "회의".encode()),
        (False, "chat", b"\x00\xff"),
    ]
    assert messages[1][0] == messages[1][1].lsn  # a message outside a transaction is at its own LSN
    # No event from any of them.
    assert [e[1]["op"] for e in events(changes)] == ["c", "c"]


@pytest.mark.django_db(transaction=True)
def test_the_chat_tables_changes_become_events_keyed_by_id(make_user, make_room):
    from chat_messages.models import Message as ChatMessage
    from chat_messages.services import messages_store, send_envelope

    slot = Slot(list(CAPTURED_TABLES))
    try:
        alice, bob = make_user(), make_user()
        room = make_room(owner=alice, members=[bob])
        messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=KEY,
                                            body=f"@{bob.username} 회의는 3시")])  # fmt: skip
        message = ChatMessage.objects.get(room=room)
        # What a snapshot reads (the columns as text, by the catalog's Relation) gives the same row.
        with connection.cursor() as cursor:
            relation = pgoutput.relation_of(cursor, "chat_messages_message")
            names = ", ".join(f'"{c.name}"::text' for c in relation.columns)
            cursor.execute(f"SELECT {names} FROM chat_messages_message WHERE id = %s", [message.pk])
            text_row = cursor.fetchone()
        read_key, read = debezium.event(relation=relation, op="r", new=text_row, old=None, xid=None, lsn=7,
                                        commit_ms=CAPTURED_MS, db_name="test_chat", captured_ms=CAPTURED_MS)  # fmt: skip
        ChatMessage.objects.filter(pk=message.pk).delete()
        changes = slot.changes()
        found = events(changes)
    finally:
        slot.drop()

    tables = [value["source"]["table"] for _, value in found]
    assert set(tables) <= set(CAPTURED_TABLES)
    assert {"accounts_user", "rooms_room", "rooms_participant", "chat_messages_message"} <= set(tables)
    for key, value in found:
        assert list(key) == ["id"] and isinstance(key["id"], int)
        assert key["id"] == (value["after"] or value["before"])["id"]
        assert json.loads(json.dumps(value)) == value
    sent = [v for _, v in found if v["source"]["table"] == "chat_messages_message" and v["op"] == "c"]
    assert len(sent) == 1
    after = sent[0]["after"]
    assert (after["id"], after["room_id"], after["sender_id"], after["seq"]) == (message.pk, room.pk, alice.pk, 1)
    assert after["body"] == f"@{bob.username} 회의는 3시" and after["client_msg_id"] == str(KEY)
    assert after["mentions"] == message.mentions == [bob.pk]
    expected = message.created_at.astimezone(UTC)
    assert after["created_at"] == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert after["edited_at"] is None and after["deleted_at"] is None
    assert read_key == {"id": message.pk} and read["after"] == after and read["before"] is None
    assert (read["op"], read["source"]["snapshot"], read["source"]["txId"]) == ("r", "true", None)
    streamed = next(m for _, _, m in changes if isinstance(m, Relation) and m.name == "chat_messages_message")
    assert streamed == relation
    gone = [v for _, v in found if v["source"]["table"] == "chat_messages_message" and v["op"] == "d"]
    assert [v["before"]["id"] for v in gone] == [message.pk] and gone[0]["after"] is None


# Hand-built messages: what this cluster does not send with protocol 1 and text values.


def _string(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(*values: bytes | None | str) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value == "u":
            out += b"u"
        elif isinstance(value, str):
            out += b"b" + struct.pack(">i", len(value.encode())) + value.encode()
        else:
            out += b"t" + struct.pack(">i", len(value)) + value
    return out


def test_streamed_transactions_carry_their_xid_in_front_of_each_row_message():
    ts = 1_000_000  # one second after 2000-01-01
    assert decode(b"S" + struct.pack(">Ib", 900, 1)) == StreamStart(xid=900, first_segment=True)
    relation = decode(
        b"R" + struct.pack(">II", 900, 16384) + _string("public") + _string("t") + b"f" + struct.pack(">h", 1)
        + b"\x01" + _string("id") + struct.pack(">Ii", 20, -1),
        in_stream=True,
    )  # fmt: skip
    assert relation == Relation(16384, "public", "t", "f", (pgoutput.Column(1, "id", 20, -1),), xid=900)
    insert = decode(b"I" + struct.pack(">II", 900, 16384) + b"N" + _tuple(b"7"), in_stream=True)
    assert insert == Insert(relation_oid=16384, new=(b"7",), xid=900)
    update = decode(
        b"U" + struct.pack(">II", 900, 16384) + b"O" + _tuple(b"7", "u") + b"N" + _tuple(b"8", None), in_stream=True
    )
    assert update == Update(relation_oid=16384, new=(b"8", None), old=(b"7", UNCHANGED), old_kind="O", xid=900)
    assert decode(b"E") == StreamStop()
    commit = decode(b"c" + struct.pack(">IbQQq", 900, 0, 100, 120, ts))
    assert commit == StreamCommit(900, 0, 100, 120, datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert decode(b"A" + struct.pack(">II", 900, 901)) == StreamAbort(900, 901)
    assert decode(b"A" + struct.pack(">IIQq", 900, 901, 130, -1)) == StreamAbort(
        900, 901, abort_lsn=130, abort_ts=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    )
    # Outside a stream the same bytes are misread, and the decoder says so instead of guessing.
    with pytest.raises(DecodeError):
        decode(b"I" + struct.pack(">II", 900, 16384) + b"N" + _tuple(b"7"))


def test_hand_built_origin_type_truncate_message_and_binary_values():
    assert decode(b"O" + struct.pack(">Q", 2**64 - 1) + _string("회의")) == Origin(2**64 - 1, "회의")
    assert decode(b"Y" + struct.pack(">I", 99999) + _string("") + _string("mood")) == Type(99999, "", "mood")
    assert decode(b"T" + struct.pack(">ibII", 2, 0, 16384, 16390)) == Truncate((16384, 16390), 0)
    message = decode(b"M\x00" + struct.pack(">Q", 42) + _string("p") + struct.pack(">i", 0))
    assert message == Message(transactional=False, lsn=42, prefix="p", content=b"")
    binary = decode(b"I" + struct.pack(">I", 1) + b"N" + _tuple("\x00\x00\x00\x07", b"x"))
    assert binary.new == (Binary(b"\x00\x00\x00\x07"), b"x")
    relation = Relation(1, "public", "t", "d", (pgoutput.Column(1, "id", 20, -1), pgoutput.Column(0, "n", 25, -1)))
    with pytest.raises(ValueError, match="binary"):
        debezium.row(relation, binary.new)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"Z\x00",  # unknown kind
        b"B" + struct.pack(">Qq", 1, 2),  # cut short: no xid
        b"B" + struct.pack(">QqIb", 1, 2, 3, 0),  # a byte left over
        b"U" + struct.pack(">I", 1) + b"X" + _tuple(b"1"),  # neither K, O nor N
        b"D" + struct.pack(">I", 1) + b"N" + _tuple(b"1"),  # a delete without its old key
        b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"t" + struct.pack(">i", 5) + b"abc",  # value cut
        b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">h", 1) + b"x",  # unknown column kind
        b"O" + struct.pack(">Q", 1) + b"no terminator",
    ],
)
def test_malformed_messages_raise(data):
    with pytest.raises(DecodeError):
        decode(data)


def test_lsn_and_timestamp_helpers():
    assert pgoutput.lsn_to_int("0/1EFBE80") == 0x1EFBE80
    assert pgoutput.lsn_to_int("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert pgoutput.lsn_to_str((0x16 << 32) + 0xB374D848) == "16/B374D848"
    assert pgoutput.pg_timestamp(0) == datetime(2000, 1, 1, tzinfo=UTC)
    assert pgoutput.unix_us(datetime(2000, 1, 1, 0, 0, 0, 1999, tzinfo=UTC)) == 946_684_800_001_999
    begin = Begin(final_lsn=1, commit_ts=datetime(2000, 1, 1, 0, 0, 0, 1999, tzinfo=UTC), xid=1)
    assert begin.commit_ms == 946_684_800_001


@pytest.mark.parametrize(
    ("type_oid", "typmod", "text", "expected"),
    [
        (16, -1, "f", False),
        (20, -1, "-9223372036854775808", -(2**63)),
        (701, -1, "1.5", 1.5),
        (701, -1, "NaN", "NaN"),
        (1700, -1, "12345678901234567890.000001", "12345678901234567890.000001"),
        (17, -1, "\\x00ff10", "AP8Q"),
        (1184, -1, "2026-12-05 03:59:09+00", "2026-12-05T03:59:09.000000Z"),
        (1184, 0, "2026-12-05 03:59:09-02:30", "2026-12-05T06:29:09Z"),
        (1184, -1, "1900-01-01 00:00:00+05:53:28", "1899-12-31T18:06:32.000000Z"),
        (1184, -1, "infinity", "infinity"),
        (1184, -1, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"),
        (1114, -1, "1970-01-01 00:00:01.000002", 1_000_002),
        (1114, 3, "1970-01-01 00:00:01.002", 1_002),
        (1082, -1, "1969-12-31", -1),
        (1082, -1, "infinity", "infinity"),
        (1005, -1, "{}", []),
        (1000, -1, "{t,f,NULL}", [True, False, None]),
        (1185, -1, '{"2026-12-05 03:59:09+00",NULL}', ["2026-12-05T03:59:09.000000Z", None]),
        (3807, -1, '{"{\\"a\\": 1}"}', ['{"a": 1}']),
        (600, -1, "(1,2)", "(1,2)"),  # point: not covered, its text
        (1017, -1, '{"(1,2)"}', '{"(1,2)"}'),  # point[]: not covered either
    ],
)
def test_values_convert_as_debezium_gives_them(type_oid, typmod, text, expected):
    assert to_json(type_oid, text, typmod=typmod) == expected


def test_array_text_edge_cases():
    assert parse_array('{"",NULL,"NULL",null,a b}') == ["", None, "NULL", None, "a b"]
    assert parse_array("[2:3]={x,y}") == ["x", "y"]
    assert parse_array("{{}}") == [[]]
    with pytest.raises(ValueError):
        parse_array("{1,2}x")
