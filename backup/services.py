"""The backup database: applying change events (Debezium's shape) to it, and comparing it with the primary.

The events come from ``capture_changes`` (backup/capture.py, the write-ahead log) or from Debezium
on Kafka Connect (docker/debezium/), on ``chat.cdc``.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connections, transaction

from streams import codec
from streams.pipeline.worker import SystemicError

from .tables import CAPTURED_TABLES

log = logging.getLogger(__name__)

BACKUP = "backup"


def backup_configured() -> bool:
    return BACKUP in settings.DATABASES


def backup_apply(*, changes: list[dict]) -> None:
    """Apply row changes to the backup database, idempotently and in the order given.

    A change is a Debezium PostgreSQL event (``op``, ``before``, ``after``, ``source``; bare or
    schema-wrapped; see ``debezium_event``).

    Foreign keys are not enforced while applying (``session_replication_role = replica``, as
    PostgreSQL's own logical replication does): rows of different tables travel on different
    partitions and may arrive in another order than they were written. Unique keys other than
    the primary key are enforced, and that order can break them for a moment (a user renamed
    from "a" to "b" while a new user takes "a": the newcomer may arrive first). So a batch that
    meets a unique violation is applied again change by change, putting off each change that
    conflicts (and the later changes of its row, which keep their order) until the rest of the
    batch is in; only a change that still conflicts then fails.
    """
    try:
        with transaction.atomic(using=BACKUP), connections[BACKUP].cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            _apply_grouped(cursor, changes)
    except IntegrityError:
        _apply_deferring(changes)


def _apply_grouped(cursor, changes: list[dict]) -> None:
    """Apply a batch with one upsert statement per table for its whole-row images, not one per change.

    A steady chat's batch holds hundreds of images of a few tables (every stored message, and its
    room and read position again and again): one statement each cost PostgreSQL and this process
    more than the rows themselves (bench/README.md, "The shipped set"). The images of a row are
    folded into its last one, kept in the place of that last one; anything else (a delete, an
    update with unavailable columns, an image of another column set) first applies what was
    gathered, then itself, so every row still goes through its changes in order. Foreign keys are
    not enforced here, so the order between tables does not matter; a unique violation sends the
    whole batch through ``_apply_deferring`` as before.
    """
    gathered: dict[str, tuple[tuple[str, ...], dict]] = {}

    def apply_gathered() -> None:
        for table, (columns, rows) in gathered.items():
            _upsert_many(cursor, table, columns, list(rows.values()))
        gathered.clear()

    for change in changes:
        image = _whole_image(change)
        if image is None:
            apply_gathered()
            _apply(cursor, change)
            continue
        table, row = image
        columns, rows = gathered.get(table, (tuple(row), {}))
        if columns != tuple(row):
            apply_gathered()
            columns, rows = tuple(row), {}
        rows.pop(row["id"], None)  # its last image, in the last one's place
        rows[row["id"]] = row
        gathered[table] = (columns, rows)
    apply_gathered()


def _whole_image(change: dict) -> tuple[str, dict] | None:
    """``(table, row)`` for an insert, snapshot read or update carrying every column of its row;
    None for anything else (``_apply`` takes those, and says what is wrong with a bad one)."""
    event = debezium_event(change)
    if event is None or event.get("op") not in ("c", "r", "u"):
        return None
    table = (event.get("source") or {}).get("table")
    after = event.get("after")
    if table not in CAPTURED_TABLES or not isinstance(after, dict) or after.get("id") is None:
        return None
    row = debezium_row(table=table, row=after)
    return (table, row) if len(row) == len(after) else None


def _apply_deferring(changes: list[dict]) -> None:
    with transaction.atomic(using=BACKUP), connections[BACKUP].cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        pending = list(changes)
        while pending:
            deferred, waiting, failed = [], set(), []
            for change in pending:
                row = _row_of(change)
                if row is not None and row in waiting:
                    # A later change of a row whose earlier change was put off waits behind it:
                    # applied first, it would be overwritten by the older one.
                    deferred.append(change)
                    continue
                try:
                    with transaction.atomic(using=BACKUP):  # a savepoint per change
                        _apply(cursor, change)
                except IntegrityError as exc:
                    deferred.append(change)
                    waiting.add(row)
                    failed.append((change, exc))
            # No progress: nothing in this batch frees the key; the change that does is in another
            # batch (another partition). The backup row holding the key is then stale: the
            # primary's uniqueness means it was changed or deleted before this change took the key,
            # and that event is on its way and brings the row back as it is (a full image) or
            # deletes it. So it goes now, and this change goes in.
            if len(deferred) == len(pending) and not any(_unblock(cursor, c, e) for c, e in failed):
                raise failed[0][1]  # a real conflict, not an order of arrival
            pending = deferred


def _unblock(cursor, change: dict, error: IntegrityError) -> bool:
    """Delete the backup row that holds, under another id, the unique key ``change`` brings.

    True when one was deleted. Only unique constraints other than the primary key, and only for
    an upsert: anything else is a real conflict.
    """
    cause = getattr(error, "__cause__", None)
    constraint = getattr(getattr(cause, "diag", None), "constraint_name", None)
    event = debezium_event(change) or {}
    after, table = event.get("after"), (event.get("source") or {}).get("table")
    if not constraint or not isinstance(after, dict) or table not in CAPTURED_TABLES:
        return False
    cursor.execute(
        "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_constraint c"
        " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
        " WHERE c.conname = %s AND c.conrelid = %s::regclass AND c.contype = 'u'",
        [constraint, table],
    )
    columns = cursor.fetchone()[0]
    if not columns or any(c not in after for c in columns):
        # A unique index that is not a constraint: look it up as an index.
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE x.relname = %s AND i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary",
            [constraint, table],
        )
        columns = cursor.fetchone()[0]
    if not columns or any(c not in after for c in columns):
        return False
    row = debezium_row(table=table, row={c: after[c] for c in columns} | {"id": after["id"]})
    matches = " AND ".join(f't."{c}" IS NOT DISTINCT FROM r."{c}"' for c in columns)
    cursor.execute(
        f"DELETE FROM {table} t USING jsonb_populate_record(NULL::{table}, %s::jsonb) r"
        f" WHERE {matches} AND t.id <> r.id",
        [codec.dumps(row).decode()],
    )
    if cursor.rowcount:
        log.info("chat-backup: %s #%s took a key a stale row held (%s); that row waits for its own event",
                 table, after["id"], constraint)  # fmt: skip
    return cursor.rowcount > 0


def _row_of(change: dict) -> tuple | None:
    """``(table, id)`` of the row a change is about (None for a tombstone)."""
    event = debezium_event(change)
    if not event:
        return None
    image = event.get("after") or event.get("before") or {}
    return (event.get("source") or {}).get("table"), image.get("id")


def _apply(cursor, change: dict) -> None:
    _apply_debezium(cursor, change)


# -- Debezium events ---------------------------------------------------------------------------
# The consumer side of WAL capture speaks Debezium's PostgreSQL event format, so the same
# ``chat-backup`` applies what the app's own capture publishes and what Debezium on Kafka Connect
# (docker/debezium/chat-backup.json) writes to the same topic.

# What Debezium writes for a TOASTed column an UPDATE left unchanged (``unavailable.value.placeholder``):
# the value is not in the WAL record, so the backup keeps its own.
DEBEZIUM_UNAVAILABLE = "__debezium_unavailable_value"
# The same placeholder as a bytea (base64 in JSON) and as an int/bigint/date array (its bytes as numbers).
_UNAVAILABLE_BYTES = base64.b64encode(DEBEZIUM_UNAVAILABLE.encode()).decode()
_UNAVAILABLE_CODES = list(DEBEZIUM_UNAVAILABLE.encode())
_EPOCH = datetime(1970, 1, 1)  # Debezium's Date and MicroTimestamp count from it (no zone)
# The column types whose Debezium values need converting back (arrays: by their element type).
_CONVERTED = frozenset({"json", "jsonb", "bytea", "date", "timestamp", "time", "interval"})


class SchemaDrift(SystemicError, ValueError):
    """An event carries a column the backup's table does not have (the backup needs migrating).

    Systemic: every later event of that table fails alike, and dead-lettering them would lose
    their order; the stream is held until the backup is migrated.
    """


@dataclass(frozen=True)
class Column:
    """A backup column as the conversion needs it: its type (``udt_name``: ``_int8`` for int8[])
    and, for times, the fractional digits, which tell Debezium's milliseconds from microseconds."""

    type: str
    precision: int | None = None


# The backup tables' columns, read once per process; refreshed when an event names a column
# that is not there (the backup was migrated while this process ran).
_columns: dict[str, dict[str, Column]] = {}


def debezium_event(value: dict | None) -> dict | None:
    """The envelope of a Debezium record value: the bare form as it is, the ``{"schema",
    "payload"}`` form (JsonConverter with ``schemas.enable=true``) unwrapped; None for a tombstone."""
    if value is not None and "payload" in value and "op" not in value:
        value = value["payload"]
    return value


def backup_columns(*, table: str, refresh: bool = False) -> dict[str, Column]:
    """The backup table's columns by name (cached; ``refresh`` reads them again)."""
    if refresh or not _columns:
        with connections[BACKUP].cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name, udt_name, datetime_precision FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                [list(CAPTURED_TABLES)],
            )
            read: dict[str, dict[str, Column]] = {}
            for table_name, column, udt, precision in cursor.fetchall():
                read.setdefault(table_name, {})[column] = Column(udt, precision)
        _columns.clear()
        _columns.update(read)
    return _columns.get(table, {})


def debezium_row(*, table: str, row: dict) -> dict:
    """A Debezium ``after`` image as values ``jsonb_populate_record`` stores right in ``table``.

    Debezium writes json/jsonb as a string of JSON text, dates as days since the epoch,
    timestamps without a zone as micro- (or milli-) seconds, bytea as base64; timestamptz
    (ISO 8601 in UTC), numbers, text, uuid and arrays go as they are. Columns holding the
    unavailable-value placeholder are left out, so the update keeps what the backup has. A column
    the backup does not have raises ``SchemaDrift``: dropping it would lose data silently.
    """
    columns = backup_columns(table=table)
    if not row.keys() <= columns.keys():
        columns = backup_columns(table=table, refresh=True)
        missing = sorted(row.keys() - columns.keys())
        if missing:
            what = f"{table}.{', '.join(missing)}" if columns else f"table {table}"
            raise SchemaDrift(f"schema drift: {what} not in the backup database (migrate it)")
    return {
        name: debezium_value(value, columns[name])
        for name, value in row.items()
        if not _unavailable(value, columns[name])
    }


def _unavailable(value, column: Column) -> bool:
    if value == DEBEZIUM_UNAVAILABLE:
        return True
    if column.type == "bytea":
        return value == _UNAVAILABLE_BYTES
    if column.type.startswith("_") and isinstance(value, list):
        return value == [DEBEZIUM_UNAVAILABLE] or value == _UNAVAILABLE_CODES
    return False


def debezium_value(value, column: Column):
    """One Debezium column value as a literal PostgreSQL reads into ``column`` (see ``debezium_row``)."""
    kind = column.type
    if value is None or (kind not in _CONVERTED and not kind.startswith("_")):
        return value  # numbers, booleans, text, uuid, timestamptz, numeric (a string): as they are
    if isinstance(value, list):  # an array: its elements by the element type
        element = Column(kind.removeprefix("_"), column.precision)
        return [debezium_value(v, element) for v in value]
    if kind in ("json", "jsonb"):
        return codec.loads(value) if isinstance(value, str) else value
    if kind == "bytea":
        return "\\x" + base64.b64decode(value).hex() if isinstance(value, str) else value
    if not isinstance(value, int) or isinstance(value, bool):
        return value  # already a literal PostgreSQL reads
    if kind == "date":
        return (_EPOCH + timedelta(days=value)).date().isoformat()
    if kind == "interval":  # io.debezium.time.MicroDuration
        return f"{value} microseconds"
    # time.precision.mode=adaptive: (0)..(3) fractional digits in milliseconds, more in microseconds.
    millis = column.precision is not None and column.precision <= 3
    unit = timedelta(milliseconds=1) if millis else timedelta(microseconds=1)
    moment = _EPOCH + value * unit
    return moment.isoformat() if kind == "timestamp" else moment.time().isoformat()


def _apply_debezium(cursor, change: dict) -> None:
    event = debezium_event(change)
    if event is None:
        return  # a tombstone: the delete before it did the work
    op = event.get("op")
    source = event.get("source") or {}
    table = source.get("table")
    if op == "t":
        # A truncate has no rows, and the backup is not emptied on a word that carries no key:
        # nothing the app does truncates a chat table, so it is someone's maintenance.
        log.warning("chat-backup: ignored a truncate of %s at LSN %s", table, source.get("lsn"))
        return
    if table not in CAPTURED_TABLES:
        raise ValueError(f"not a captured table: {table!r}")
    if op in ("c", "r", "u"):
        after = event.get("after")
        if not isinstance(after, dict) or after.get("id") is None:
            raise ValueError(f"{table}: an {op!r} event without the row (after.id)")
        row = debezium_row(table=table, row=after)
        if len(row) == len(after):
            _upsert(cursor, table, row)
        else:
            _update(cursor, table, row)
    elif op == "d":
        before = event.get("before")
        if not isinstance(before, dict) or before.get("id") is None:
            raise ValueError(f"{table}: a delete without the row's id (before.id)")
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [before["id"]])
    else:
        raise ValueError(f"unknown Debezium op {op!r} on {table}")


def _upsert(cursor, table: str, row: dict) -> None:
    """Insert or update the row's columns the event carries (``_upsert_many`` of one row)."""
    _upsert_many(cursor, table, tuple(row), [row])


def _upsert_many(cursor, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Insert or update rows that carry the same ``columns`` (each id once), in one statement.

    A column the events lack (they were captured before a migration added that column, applied
    after the backup has it too) takes its database default in a new row and keeps its value in
    an existing one; listing all of them would propose NULL for it, which a NOT NULL column
    refuses even before the conflict.
    """
    names = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != "id")
    cursor.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
        f" ON CONFLICT (id) DO {'UPDATE SET ' + updates if updates else 'NOTHING'}",
        [codec.dumps(rows).decode()],
    )


def _update(cursor, table: str, row: dict) -> None:
    """Apply a row image some columns of which were unavailable: an UPDATE of the others.

    Not an upsert: PostgreSQL checks NOT NULL on the row an INSERT proposes before it finds the
    conflict, and the missing columns would be null there. A row the backup does not have
    cannot be made from part of it: that fails, naming the row.
    """
    sets = ", ".join(f'"{c}" = r."{c}"' for c in row if c != "id") or '"id" = r."id"'
    cursor.execute(
        f"UPDATE {table} t SET {sets} FROM jsonb_populate_record(NULL::{table}, %s::jsonb) r WHERE t.id = r.id",
        [codec.dumps(row).decode()],
    )
    if cursor.rowcount == 0:
        raise ValueError(
            f"{table} #{row['id']}: an update without its unavailable (TOASTed) columns, for a row"
            " the backup does not have"
        )


def backup_compare() -> list[dict]:
    """For each captured table: row count and a digest of every row, on both databases."""
    report = []
    for table in CAPTURED_TABLES:
        sides = {}
        for alias in ("default", BACKUP):
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) FROM {table} t"
                )
                sides[alias] = cursor.fetchone()
        report.append(
            {
                "table": table,
                "primary": sides["default"],
                "backup": sides[BACKUP],
                "same": sides["default"] == sides[BACKUP],
            }
        )
    return report
