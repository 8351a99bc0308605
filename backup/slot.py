"""The publication and the logical replication slot that change capture reads, and their hygiene.

The publication names the captured tables (``CAPTURED_TABLES``); the slot, decoded by
``pgoutput``, remembers how far capture has confirmed. PostgreSQL keeps every WAL segment from the
slot's ``restart_lsn`` on: a capture process that stops while the primary keeps writing makes the
WAL grow without bound. So the slot exists only while capture is wanted (``capture_slot drop``
when a backup is retired), its retained WAL and lag are reported (``capture_status``, the admin),
and past ``CHAT_CAPTURE_WAL_WARN_BYTES`` a warning is logged by the capture process and shown.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connections

from .tables import CAPTURED_TABLES

log = logging.getLogger(__name__)


def slot_name() -> str:
    return settings.CHAT_CAPTURE_SLOT


def publication_name() -> str:
    return settings.CHAT_CAPTURE_PUBLICATION


def snapshot_slot_name() -> str:
    """The temporary slot a new capture takes its snapshot from (backup/capture.py ``prepare``)."""
    return f"{slot_name()[:54]}_snapshot"  # slot names have at most 63 characters


def slot_copy(*, source: str) -> None:
    """Make the capture slot as a copy of ``source`` (its position and the WAL it retains)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_copy_logical_replication_slot(%s, %s, false)", [source, slot_name()])


def publication_ensure() -> bool:
    """Create the publication of the captured tables, or bring its table list up to date.

    Returns True when something changed. A publication costs nothing by itself: only a slot
    reading it retains WAL.
    """
    name = publication_name()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", [name])
        present = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [name])
        exists = cursor.fetchone() is not None
        tables = ", ".join(CAPTURED_TABLES)
        if not exists:
            cursor.execute(f'CREATE PUBLICATION "{name}" FOR TABLE {tables}')
            return True
        if present != set(CAPTURED_TABLES):
            cursor.execute(f'ALTER PUBLICATION "{name}" SET TABLE {tables}')
            return True
    return False


def publication_drop() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(f'DROP PUBLICATION IF EXISTS "{publication_name()}"')


def slot_exists() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot_name()])
        return cursor.fetchone() is not None


def slot_drop() -> bool:
    """Drop the slot (its retained WAL is released); False when there was none.

    A slot in use by a running capture cannot be dropped: stop ``capture_changes`` first.
    """
    if not slot_exists():
        return False
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot_name()])
    return True


@dataclass
class SlotStatus:
    slot: str
    exists: bool
    active: bool = False
    # WAL kept for the slot (from its restart_lsn to now) and not yet confirmed by capture (from
    # its confirmed_flush_lsn to now), in bytes.
    retained_bytes: int = 0
    lag_bytes: int = 0
    confirmed_flush_lsn: str | None = None
    warn_bytes: int = 0
    wal_status: str | None = None  # reserved | extended | unreserved | lost (PostgreSQL's words)
    # No slot yet: a capture is publishing its snapshot, and the figures are its temporary slot's.
    snapshot: bool = False

    @property
    def over_limit(self) -> bool:
        return (self.exists or self.snapshot) and self.retained_bytes > self.warn_bytes

    def as_dict(self) -> dict:
        return {**asdict(self), "over_limit": self.over_limit}


def slot_status() -> SlotStatus:
    """The slot's state as PostgreSQL reports it (while a new slot's snapshot is published, the
    temporary slot's, which retains WAL as much)."""
    status = SlotStatus(slot=slot_name(), exists=False, warn_bytes=settings.CHAT_CAPTURE_WAL_WARN_BYTES)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,"
            " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint,"
            " confirmed_flush_lsn::text, wal_status, temporary"
            " FROM pg_replication_slots WHERE slot_name IN (%s, %s) ORDER BY temporary LIMIT 1",
            [status.slot, snapshot_slot_name()],
        )
        row = cursor.fetchone()
    if row is not None:
        *figures, temporary = row
        status.exists, status.snapshot = not temporary, temporary
        status.active, status.retained_bytes, status.lag_bytes, status.confirmed_flush_lsn, status.wal_status = figures
    return status


def slot_warn_if_over(status: SlotStatus | None = None) -> SlotStatus:
    """Log a warning when the slot retains more WAL than ``CHAT_CAPTURE_WAL_WARN_BYTES``."""
    status = status or slot_status()
    if status.over_limit:
        log.warning(
            "change capture: slot %s retains %.1f MB of WAL (warning above %.1f MB); is capture_changes running?"
            " Drop the slot (manage.py capture_slot drop) if the backup is retired.",
            status.slot, status.retained_bytes / 1e6, status.warn_bytes / 1e6,
        )  # fmt: skip
    return status
