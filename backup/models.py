"""Change capture: row changes recorded by database triggers, in commit order per row."""

from django.db import models


class ChangeEvent(models.Model):
    """One captured row change, waiting to be published on ``chat.cdc``.

    Written by statement-level triggers in the same transaction as the change (a transactional
    outbox), so a change is captured if and only if it commits. ``capture_changes`` publishes
    and deletes them in id order.
    """

    table_name = models.CharField(max_length=63)
    op = models.CharField(max_length=6)  # "upsert" | "delete"
    row_id = models.BigIntegerField()
    row = models.JSONField(null=True)
    captured_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.op} {self.table_name}#{self.row_id}"
