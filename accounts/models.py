"""The user model, custom from the first migration so it can grow without a painful swap."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from .usernames import username_key


class User(AbstractUser):
    """A person who chats. Deleting one leaves their messages as "deleted user"."""

    # What the name looks like (accounts/usernames.py): two accounts whose names could be taken
    # for one another cannot both hold it. NULL only for a look-alike accepted before the rule
    # existed (the older account keeps the key), and for rows written around save().
    username_skeleton = models.TextField(
        null=True, blank=True, unique=True, editable=False, help_text="The name's look-alike key (UTS #39 skeleton)."
    )

    # A moderator's suspension (docs/moderation.md): from suspended_at until suspended_until (null:
    # until lifted) no login, token, session or socket works. Ends by itself; lifting clears it.
    suspended_at = models.DateTimeField(null=True, blank=True, editable=False)
    suspended_until = models.DateTimeField(null=True, blank=True, editable=False)
    suspension_reason = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def is_suspended(self, now=None) -> bool:
        """Whether a suspension is in force at ``now`` (by default, now)."""
        if self.suspended_at is None:
            return False
        return self.suspended_until is None or self.suspended_until > (now or timezone.now())

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        # The name as stored, to tell a rename on save (None when the query left it out).
        user._username_loaded = user.__dict__.get("username")
        return user

    def __str__(self) -> str:
        return self.username

    def save(self, *args, **kwargs) -> None:
        # Recomputed only for a new or renamed account: an old look-alike that holds no key keeps
        # saving (say, to deactivate it) without clashing with the account that holds it.
        renamed = "username" in self.__dict__ and self.username != getattr(self, "_username_loaded", None)
        if self._state.adding or renamed:
            self.username_skeleton = username_key(self.username)
            update_fields = kwargs.get("update_fields")
            if update_fields is not None and "username" in update_fields:
                kwargs["update_fields"] = {*update_fields, "username_skeleton"}
        super().save(*args, **kwargs)
        self._username_loaded = self.__dict__.get("username")


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


class Device(models.Model):
    """A phone or browser where the user wants push notifications (mentions, direct messages).

    ``token`` is what the platform's push service addresses it by (an FCM registration token,
    an APNs device token, a Web Push subscription's endpoint); it belongs to one user at a time.
    """

    class Platform(models.TextChoices):
        FCM = "fcm", "Firebase Cloud Messaging (Android)"
        APNS = "apns", "Apple Push Notification service (iOS)"
        WEB = "web", "Web Push"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=4, choices=Platform.choices)
    token = models.CharField(max_length=1024)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "token"], name="device_token_unique")]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} device of {self.user_id}"
