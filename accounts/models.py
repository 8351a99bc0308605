"""The user model, custom from the first migration so it can grow without a painful swap."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who chats. Deleting one leaves their messages as "deleted user"."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.username


class UserSession(models.Model):
    """A web session a user logged in with, recorded at login.

    Django's session rows only hold the user id inside encoded data, so finding a user's
    sessions would mean decoding every session in the table. Keeping the keys here makes
    deleting an account's sessions one query. The key is not a foreign key to the session row:
    that would make every session deletion cascade row by row instead of in one statement.
    """

    session_key = models.CharField(max_length=40, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="web_sessions")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"session of {self.user_id}"


class AccountDeletion(models.Model):
    """One account deletion and its progress, kept after the account is gone for the moderators.

    Holds the old id and username as plain values (not a foreign key): the user row no longer
    exists once the deletion is done.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    user_id = models.BigIntegerField(db_index=True)
    username = models.CharField(max_length=150)
    erase_messages = models.BooleanField(default=False)
    # Who asked: the user themself, or the moderator's username.
    requested_by = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    messages_total = models.PositiveIntegerField(default=0)
    messages_done = models.PositiveIntegerField(default=0)
    # Rooms the deletion touched (messages anonymised, membership removed, room deleted), filled
    # chunk by chunk and announced on Kafka at the end.
    room_ids = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"deletion of {self.username} ({self.status})"

    @property
    def progress(self) -> int:
        """Percent of the account's messages processed; 100 only once the account is gone."""
        if self.status == self.Status.DONE:
            return 100
        if not self.messages_total:
            return 0
        # Capped below 100: the final step (rooms, memberships, the user row) is still to come.
        return min(99, self.messages_done * 100 // self.messages_total)
