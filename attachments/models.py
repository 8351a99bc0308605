"""Files and images uploaded to a room, and who keeps them after their message is gone."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Attachment(models.Model):
    """One uploaded file: its stored original (and thumbnail, for an image) and what it is.

    Uploaded to a room by a member, then attached to one message of theirs by the persistence
    consumer. ``message_id`` names that message without a foreign key: messages live in an app
    above this one (chat_messages imports attachments, never the other way).

    Its files are deleted by the ``attachments.purge`` task once it is *released* (its message was
    deleted or erased, it was never sent, its uploader's account went) or its room is gone
    (``room`` null), and no :class:`AttachmentHold` keeps it.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        FILE = "file", "File"

    # SET_NULL: a deleted room lets go of its attachments in bulk (rooms_destroy), and the purge
    # finds them by their null room; a drawer hold may still keep one.
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_id = models.BigIntegerField(null=True, blank=True, help_text="The message it is attached to.")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    name = models.CharField(max_length=255, help_text="The file's name as uploaded (for display only).")
    content_type = models.CharField(max_length=100, help_text="Detected from the content, not the name.")
    size = models.BigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Storage names (Django's storage API), under a random token: not guessable, never served as is.
    file = models.CharField(max_length=255)
    thumbnail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attached_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["message_id"], name="attachment_by_message", condition=models.Q(message_id__isnull=False)
            ),
            # The sweep's: uploads never sent, oldest first.
            models.Index(
                fields=["created_at"],
                name="attachment_unattached",
                condition=models.Q(message_id__isnull=True, released_at__isnull=True),
            ),
            # The purge's: what may go.
            models.Index(
                fields=["id"],
                name="attachment_releasable",
                condition=models.Q(released_at__isnull=False) | models.Q(room__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.pk})"


class AttachmentHold(models.Model):
    """Someone keeps an attachment beyond its message: its files stay while a hold exists.

    ``holder`` says what keeps it (``drawer:<entry id>``: a saved message in that user's drawer);
    ``user`` may still fetch it whatever happens to the message or the room.
    """

    attachment = models.ForeignKey(Attachment, on_delete=models.CASCADE, related_name="holds")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    holder = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["attachment", "holder"], name="attachment_hold_once"),
        ]
        indexes = [
            models.Index(fields=["holder"], name="attachment_hold_by_holder"),
            models.Index(fields=["user", "attachment"], name="attachment_hold_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.holder} keeps {self.attachment_id}"
