"""Change capture keeps no table of its own: it reads the write-ahead log (backup/capture.py).

``ReplicationSlot`` is PostgreSQL's view of the replication slots, unmanaged (no table is made):
the admin's "Change capture" page hangs from it.
"""

from django.db import models


class ReplicationSlot(models.Model):
    """A row of ``pg_replication_slots`` (read only; backup/slot.py reads the one capture uses)."""

    slot_name = models.TextField(primary_key=True)
    plugin = models.TextField(null=True)
    database = models.TextField(null=True)
    active = models.BooleanField()

    class Meta:
        managed = False
        db_table = "pg_replication_slots"
        verbose_name = "change capture"
        verbose_name_plural = "change capture"

    def __str__(self) -> str:
        return self.slot_name
