"""Change capture from the write-ahead log: the slot, decoded by pgoutput, to ``chat.cdc``.

What Debezium's PostgreSQL connector does on Kafka Connect, in one process of ours
(``manage.py capture_changes``): read the logical replication slot over a replication
connection, decode each ``pgoutput`` message (backup/pgoutput.py), turn each row change into a
Debezium change event (backup/debezium.py) keyed ``{"id": pk}``, publish them, and only once the
broker acknowledged them confirm the transactions' end positions to PostgreSQL. A crash before the
confirmation replays those transactions from the slot; the backup consumer applies a replay
idempotently. Nothing is written on the chat tables' write path: the WAL is written anyway.

A new slot starts with a snapshot, as Debezium's ``snapshot.mode=initial``: a temporary slot is
created with an exported snapshot, every captured row as of that snapshot is published as a read
event (``op: "r"``), then the temporary slot is copied to the capture slot and streaming starts
exactly where the snapshot ends, so the backup misses nothing that was there before capture
began, even when capture died during its snapshot (see ``Capture.prepare``).
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from streams.pipeline import kafka

from . import debezium, pgoutput, slot
from .tables import CAPTURED_TABLES

log = logging.getLogger(__name__)

# Publish once this many events wait, or as soon as the slot has nothing more to give.
BATCH_EVENTS = 5000
# How often a running capture checks the slot's retained WAL against the warning threshold.
WARN_EVERY_S = 60.0
SNAPSHOT_CHUNK = 5000


def _dsn() -> str:
    """The default database's connection parameters as Django passes them (its OPTIONS too:
    sslmode, sslrootcert, ...) as a libpq string, each value escaped, in the DateStyle
    debezium.py reads dates and times in, whatever the server's or the role's default."""
    from psycopg2.extensions import make_dsn

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)  # Django's: the replication connection has its own
    # UTC too: Debezium writes times in UTC, and text already in UTC needs no parsing (debezium.py).
    params["options"] = f"{params.get('options', '')} -c DateStyle=ISO -c TimeZone=UTC".strip()
    return make_dsn(**params)


def _lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _lsn_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class Capture:
    """One capture process's connection to the slot, and what it has read but not yet confirmed."""

    def __init__(self, *, batch_events: int = BATCH_EVENTS) -> None:
        self.batch_events = batch_events
        self.connection = None
        self.cursor = None
        self.relations: dict[int, pgoutput.Relation] = {}
        self.db_name = settings.DATABASES["default"]["NAME"]
        # Events of whole transactions read, not yet published, and the end of the last of them.
        self.ready: list[tuple[str, bytes]] = []
        self.ready_end: int | None = None
        # The transaction being read: its Begin and its events read since the last publish.
        self.begin: pgoutput.Begin | None = None
        self.open: list[tuple[str, bytes]] = []
        self.confirmed = 0
        self.published = 0
        self.last_commit: int | None = None  # Debezium's source.sequence names the previous commit

    # -- the slot -----------------------------------------------------------------------------
    def connect(self) -> None:
        import psycopg2
        import psycopg2.extras

        self.connection = psycopg2.connect(_dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection)
        self.cursor = self.connection.cursor()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = self.cursor = None

    def prepare(self) -> bool:
        """The publication, and the slot with its initial snapshot if it is new. True if it was new.

        The snapshot is taken from a temporary slot, which PostgreSQL drops with this connection
        however the process ends, and copied to the capture slot (same position) only once every
        row is published. A slot that existed before its snapshot was complete would let the
        next capture, after a crash, stream from it and never publish the rows not yet reached,
        and let a second capture stream from it while the first still published older rows.
        """
        slot.publication_ensure()
        if slot.slot_exists():
            return False
        pending = slot.snapshot_slot_name()
        self.cursor.execute(f"CREATE_REPLICATION_SLOT \"{pending}\" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')")
        _name, consistent_point, snapshot, _plugin = self.cursor.fetchone()
        if slot.slot_exists():
            # Another capture completed its snapshot since the check above (two cannot hold the
            # temporary slot at once): stream from its slot rather than publish rows over its stream.
            self._reconnect()
            return False
        log.info("change capture: slot %s at %s; publishing its snapshot", slot.slot_name(), consistent_point)
        count = self.snapshot_publish(snapshot=snapshot, lsn=_lsn_int(consistent_point))
        self.published += count
        slot.slot_copy(source=pending)
        self._reconnect()  # the temporary slot goes with the connection that made it
        log.info("change capture: snapshot of %d rows published; slot %s created", count, slot.slot_name())
        return True

    def _reconnect(self) -> None:
        self.close()
        self.connect()

    def snapshot_publish(self, *, snapshot: str, lsn: int) -> int:
        """Publish every captured row as of the slot's exported snapshot, as read events."""
        published = 0
        now_ms = int(time.time() * 1000)
        with connections["default"].cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                # The ::text debezium.py parses, as the stream's.
                cursor.execute("SET LOCAL DateStyle = ISO")
                cursor.execute("SET LOCAL TimeZone = 'UTC'")
                for table in CAPTURED_TABLES:
                    relation = pgoutput.relation_of(cursor, table)
                    names = ", ".join(f'"{c.name}"::text' for c in relation.columns)
                    after = 0
                    while True:
                        cursor.execute(
                            f"SELECT {names} FROM {table} WHERE id > %s ORDER BY id LIMIT %s", [after, SNAPSHOT_CHUNK]
                        )
                        rows = cursor.fetchall()
                        if not rows:
                            break
                        records = []
                        for row in rows:
                            key, value = debezium.event(
                                relation=relation, op="r", new=list(row), old=None, xid=None, lsn=lsn,
                                commit_ms=now_ms, db_name=self.db_name, captured_ms=now_ms,
                            )  # fmt: skip
                            records.append((kafka.encode(key).decode(), kafka.encode(value)))
                        kafka.produce_many(kafka.CDC, records)
                        published += len(records)
                        after = int(rows[-1][0])
            finally:
                cursor.execute("COMMIT")
        return published

    def start(self) -> None:
        self.cursor.start_replication(
            slot_name=slot.slot_name(),
            decode=False,
            options={"proto_version": "1", "publication_names": slot.publication_name()},
            status_interval=10,
        )

    # -- the stream ---------------------------------------------------------------------------
    def run(self, *, running: Callable[[], bool], until_lsn: int | None = None) -> None:
        """Stream until ``running()`` turns false, or (tests, the drain) until everything up to
        ``until_lsn`` is confirmed."""
        warned_at = 0.0
        # Streaming on, publish at most every KAFKA_BACKGROUND_INTERVAL_MS: each publish waits for
        # the broker and confirms to PostgreSQL, and in a steady chat the slot has a transaction or
        # two each time it is drained (bench/README.md, "The shipped set"). Until ``until_lsn``
        # (tests, the drain), at once.
        interval = settings.KAFKA_BACKGROUND_INTERVAL_MS / 1000 if until_lsn is None else 0.0
        flushed_at = time.monotonic()
        while running():
            message = self.cursor.read_message()
            if message is not None:
                self._take(message.payload, lsn=message.data_start)
                if len(self.ready) + len(self.open) >= self.batch_events:
                    self.flush()
                    flushed_at = time.monotonic()
                continue
            due = flushed_at + interval - time.monotonic()
            if (self.ready or self.open) and due > 0:
                select.select([self.cursor], [], [], due)  # gather more until the interval is up
                continue
            self.flush()
            flushed_at = time.monotonic()
            if until_lsn is not None and self.confirmed >= until_lsn:
                return
            if time.monotonic() - warned_at > WARN_EVERY_S:
                warned_at = time.monotonic()
                slot.slot_warn_if_over()
            select.select([self.cursor], [], [], 0.2)

    def _take(self, payload: bytes, *, lsn: int) -> None:
        message = pgoutput.decode(payload)
        if isinstance(message, pgoutput.Relation):
            self.relations[message.oid] = message
        elif isinstance(message, pgoutput.Begin):
            self.begin, self.open = message, []
        elif isinstance(message, pgoutput.Commit):
            self.ready.extend(self.open)
            self.ready_end = message.end_lsn
            self.last_commit = message.commit_lsn
            self.begin, self.open = None, []
        elif isinstance(message, (pgoutput.Insert, pgoutput.Update, pgoutput.Delete)):
            self.open.append(self._event(message, lsn=lsn))
        elif isinstance(message, pgoutput.Truncate):
            # Nothing of ours truncates a chat table; a truncate by hand is not replayed on the
            # backup (Debezium skips them by default too): say so.
            log.warning("change capture: a TRUNCATE of relations %s was not captured", message.relation_oids)

    def _event(self, message, *, lsn: int) -> tuple[str, bytes]:
        relation = self.relations[message.relation_oid]
        op = {pgoutput.Insert: "c", pgoutput.Update: "u", pgoutput.Delete: "d"}[type(message)]
        key, value = debezium.event(
            relation=relation, op=op, new=getattr(message, "new", None), old=getattr(message, "old", None),
            xid=self.begin.xid if self.begin else None, lsn=lsn, last_commit_lsn=self.last_commit,
            commit_ms=self.begin.commit_ms if self.begin else int(time.time() * 1000),
            db_name=self.db_name, captured_ms=int(time.time() * 1000),
        )  # fmt: skip
        return kafka.encode(key).decode(), kafka.encode(value)

    def flush(self) -> None:
        """Publish the events read, then confirm the end of the whole transactions among them.

        The events of a transaction still being read go out too (they are committed: pgoutput
        sends a transaction once it committed), so a transaction of millions of rows never has
        to fit in memory; its end is confirmed only with its last event, so a crash before that
        replays all of it. With nothing read and no transaction open, the position the server
        has sent is confirmed instead, so an idle slot does not hold WAL that other databases'
        writes made.
        """
        if self.ready or self.open:
            kafka.produce_many(kafka.CDC, self.ready + self.open)
            self.published += len(self.ready) + len(self.open)
            self.ready, self.open = [], []
        end = self.ready_end
        if end is None and self.begin is None and not self.open:
            end = self.cursor.wal_end
        self.ready_end = None
        if end and end > self.confirmed:
            self.cursor.send_feedback(flush_lsn=end, write_lsn=end, apply_lsn=end, force=True)
            self.confirmed = end


def current_lsn() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return _lsn_int(cursor.fetchone()[0])


def capture_until_current(*, timeout: float = 30.0) -> int:
    """Capture everything committed so far, then stop (tests, ``capture_changes --once``).

    Returns how many events were published.
    """
    target = current_lsn()
    capture = Capture()
    capture.connect()
    try:
        capture.prepare()
        capture.start()
        deadline = time.monotonic() + timeout
        capture.run(running=lambda: time.monotonic() < deadline, until_lsn=target)
        if capture.confirmed < target:
            raise TimeoutError(f"change capture reached {_lsn_text(capture.confirmed)} of {_lsn_text(target)}")
        return capture.published
    finally:
        capture.close()
