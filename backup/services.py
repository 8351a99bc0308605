"""Change capture into Kafka and its application to the backup database."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import IntegrityError, connections, transaction

from streams.pipeline import kafka

from .models import ChangeEvent
from .tables import CAPTURED_TABLES

log = logging.getLogger(__name__)

BACKUP = "backup"


def backup_configured() -> bool:
    return BACKUP in settings.DATABASES


def capture_enabled() -> dict[str, bool]:
    """Whether each captured table's change-capture triggers are on (tables without them: absent)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, bool_and(t.tgenabled <> 'D') FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname LIKE 'backup\\_capture\\_%%' AND c.relname = ANY(%s) GROUP BY c.relname",
            [list(CAPTURED_TABLES)],
        )
        return dict(cursor.fetchall())


def capture_set(*, enabled: bool) -> list[str]:
    """Switch change capture on or off for every captured table; returns the tables switched.

    Capture without a backup fills ``backup_changeevent`` with rows nobody publishes, and costs
    every write a JSON copy of its rows and a second insert. Only tables whose state differs are
    altered: ALTER TABLE takes a lock that a busy chat table should not wait for.
    """
    switched = [table for table, on in capture_enabled().items() if on != enabled]
    action = "ENABLE" if enabled else "DISABLE"
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        for table in switched:
            for op in ("insert", "update", "delete"):
                cursor.execute(f"ALTER TABLE {table} {action} TRIGGER backup_capture_{op}")
    if switched:
        log.warning("change capture %s for %s", "on" if enabled else "off", ", ".join(switched))
    return switched


def changes_publish(*, limit: int = 1000) -> int:
    """Publish the oldest captured changes on ``chat.cdc`` (key ``table:id``), then forget them.

    Rows are locked with SKIP LOCKED so a second capture process cannot publish them twice at
    once, and deleted only after the broker acknowledged every one: a crash publishes some
    again, which the backup consumer applies idempotently.
    """
    with transaction.atomic():
        events = list(ChangeEvent.objects.select_for_update(skip_locked=True).order_by("id")[:limit])
        if not events:
            return 0
        kafka.produce_many(kafka.CDC, [
            (f"{e.table_name}:{e.row_id}",
             kafka.encode(kafka.envelope("row." + e.op, table=e.table_name, pk=e.row_id, row=e.row)))
            for e in events
        ])  # fmt: skip
        ChangeEvent.objects.filter(id__in=[e.id for e in events]).delete()
    return len(events)


def backup_apply(*, changes: list[dict]) -> None:
    """Apply ``row.upsert`` / ``row.delete`` envelopes to the backup database, idempotently.

    Foreign keys are not enforced while applying (``session_replication_role = replica``, as
    PostgreSQL's own logical replication does): rows of different tables travel on different
    partitions and may arrive in another order than they were written. Unique keys other than
    the primary key are enforced, and that order can break them for a moment (a user renamed
    from "a" to "b" while a new user takes "a": the newcomer may arrive first). So a batch that
    meets a unique violation is applied again change by change, putting off each change that
    conflicts until the rest of the batch is in; only a change that still conflicts then fails.
    """
    try:
        with transaction.atomic(using=BACKUP), connections[BACKUP].cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            for change in changes:
                _apply(cursor, change)
    except IntegrityError:
        _apply_deferring(changes)


def _apply_deferring(changes: list[dict]) -> None:
    with transaction.atomic(using=BACKUP), connections[BACKUP].cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        pending = list(changes)
        while pending:
            deferred, last_error = [], None
            for change in pending:
                try:
                    with transaction.atomic(using=BACKUP):  # a savepoint per change
                        _apply(cursor, change)
                except IntegrityError as exc:
                    deferred.append(change)
                    last_error = exc
            if len(deferred) == len(pending):
                raise last_error  # no progress: a real conflict, not an order of arrival
            pending = deferred


def _apply(cursor, change: dict) -> None:
    table = change.get("table")
    if table not in CAPTURED_TABLES:
        raise ValueError(f"not a captured table: {table!r}")
    if change["kind"] == "row.delete":
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [change["pk"]])
    elif change["kind"] == "row.upsert":
        columns = list(change["row"])
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != "id")
        cursor.execute(
            f"INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, %s::jsonb)"
            f" ON CONFLICT (id) DO UPDATE SET {updates}",
            [json.dumps(change["row"])],
        )
    else:
        raise ValueError(f"unknown change kind {change['kind']!r}")


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
