"""Chat messages, numbered per room by the persistence consumer."""

from django.conf import settings
from django.db import models


class Message(models.Model):
    """One chat message.

    ``seq`` is gapless per room and assigned when the persistence consumer stores the message;
    (sender, client_msg_id) is the idempotency key that makes a re-sent message a no-op.
    """

    # No index of their own on the two foreign keys: the unique constraints below start with
    # them and serve every lookup by room or by sender, and each extra index is written on every
    # stored message.
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="messages", db_index=False)
    seq = models.BigIntegerField()
    # Null once the sender's account is deleted: shown as "deleted user".
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
    )
    client_msg_id = models.UUIDField()
    body = models.TextField()
    created_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_room_seq_unique"),
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="message_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"
