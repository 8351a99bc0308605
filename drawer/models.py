"""The talk drawer: each user's saved important messages (see drawer/services.py)."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone

TAG_MAX_CHARS = 32


def tag_normalize(tag: str) -> str:
    """A tag as stored and matched: blanks collapsed and lower-cased, so filters ignore case."""
    return " ".join(tag.split()).lower()


class SavedMessage(models.Model):
    """A message a user saved to their drawer, with a snapshot that outlives the original.

    ``message`` and ``room`` link back to the original while it exists (both become NULL when
    the row goes away with its room); the snapshot fields keep what the user saved whatever
    happens later to the message, its room or the user's membership.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_messages")
    message = models.ForeignKey(
        "chat_messages.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    room_name = models.CharField(max_length=100, blank=True)
    sender_name = models.CharField(max_length=150)
    body = models.TextField()
    message_seq = models.BigIntegerField()
    message_created_at = models.DateTimeField()
    # The message's attachments when it was saved (attachments.selectors.attachment_snapshot); the
    # entry holds their files (an AttachmentHold "drawer:<id>") until it is removed.
    attachments = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=TAG_MAX_CHARS), default=list, blank=True)
    saved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Conditional: the link becomes NULL once the message row is gone, and several such
            # orphaned entries must be able to coexist.
            models.UniqueConstraint(
                fields=["user", "message"],
                condition=models.Q(message__isnull=False),
                name="drawer_one_entry_per_message",
            ),
        ]
        indexes = [
            # "My drawer, newest first" and its cursor on (saved_at, id); also serves date ranges.
            models.Index(fields=["user", "-saved_at", "-id"], name="drawer_user_saved_idx"),
            models.Index(fields=["user", "room", "-saved_at", "-id"], name="drawer_user_room_saved_idx"),
            GinIndex(fields=["tags"], name="drawer_tags_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.room_name or 'room'}#{self.message_seq}"
