"""Data exports: a user's own data, or (for an admin) a room's history, built into a ZIP by Celery."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DataExport(models.Model):
    """One export and its progress; the ZIP itself lives in the project's storage until it expires.

    Who asked and which room are plain ids with the username and room name copied, not foreign
    keys: the record (and the admin's list) outlives both, and deleting an account or a room costs
    no query here (tests/accounts bounds an account deletion's queries). A user's export whose
    account is gone has its file deleted by the next expiry sweep.
    """

    class Kind(models.TextChoices):
        USER = "user", "A user's own data"
        ROOM = "room", "A room's history"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        # Done once; its file was deleted at expires_at (EXPORT_RETENTION_HOURS).
        EXPIRED = "expired", "Expired"

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=4, choices=Kind.choices)
    requester_id = models.BigIntegerField(help_text="The account that asked (its id).")
    requester_name = models.CharField(max_length=150, help_text="Its username when it asked.")
    # A room export's room, as it was: kept when the room is deleted.
    room_id = models.BigIntegerField(null=True, blank=True, help_text="The exported room's id.")
    room_name = models.CharField(max_length=100, blank=True)
    # Whether the files of the user's attachments go into the ZIP (within EXPORT_FILES_MAX_BYTES).
    include_files = models.BooleanField(default=True)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.QUEUED)
    # Rows written so far out of the rows to write (rooms, messages, drawer entries, attachments).
    items_done = models.PositiveBigIntegerField(default=0)
    items_total = models.PositiveBigIntegerField(default=0)
    # A storage name (Django's storage API) under exports/, behind a random token; "" until done.
    file = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(null=True, blank=True, help_text="The ZIP's size in bytes.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_room", "Can export a room's history")]
        constraints = [
            # One unfinished export of their own per user: a second request gets the first.
            models.UniqueConstraint(
                fields=["requester_id"],
                condition=models.Q(kind="user", status__in=["queued", "running"]),
                name="export_one_unfinished_per_user",
            ),
        ]
        indexes = [
            models.Index(fields=["requester_id", "-created_at"], name="export_by_requester"),
            # The expiry sweep's: files still stored, soonest to expire first.
            models.Index(fields=["expires_at"], name="export_stored_by_expiry", condition=~models.Q(file="")),
        ]

    def __str__(self) -> str:
        what = f"room {self.room_name or self.room_id}" if self.kind == self.Kind.ROOM else "own data"
        return f"export of {what} by {self.requester_name} ({self.status})"

    @property
    def progress(self) -> int:
        """Percent of the rows written; 100 only once the ZIP is stored."""
        if self.status in (self.Status.DONE, self.Status.EXPIRED):
            return 100
        if not self.items_total:
            return 0
        return min(99, self.items_done * 100 // self.items_total)

    @property
    def finished(self) -> bool:
        return self.status not in self.UNFINISHED
