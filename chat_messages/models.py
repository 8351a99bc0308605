"""Chat messages, numbered per room by the persistence consumer."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.fields.json import KT
from django.db.models.functions import Cast


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
    # The message this one replies to, as it was when the reply was stored: {seq, sender: {id,
    # username}, body (its start), deleted}. A snapshot, so a page of history needs no join; the
    # quoted message's deletion (and its sender's erasure) blanks it.
    reply_to = models.JSONField(null=True, blank=True)
    # The members this message mentions (@username, or every other member for an owner's or
    # admin's @room), found when it was stored: clients highlight it and notify from it.
    mentions = ArrayField(models.BigIntegerField(), null=True, blank=True)  # null: none (most messages)
    # The files it carries, as they were when it was stored: [{id, kind, name, content_type, size,
    # width, height}] (attachments.selectors.attachment_snapshot), so a page of history needs no
    # join; null when it carries none (most messages), and once it is deleted.
    attachments = models.JSONField(null=True, blank=True)

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        # A line about the room itself (who joined, left, was added or removed, a rename): no
        # sender, its words in ``body`` and its facts in ``system``; it takes a seq like any message.
        SYSTEM = "system", "System line"

    # The database default too: a server still running the previous release inserts without it.
    kind = models.CharField(max_length=6, choices=Kind.choices, default=Kind.TEXT, db_default=Kind.TEXT)
    # A system line's facts: {event: joined|left|invited|removed|renamed, user: {id, username} or
    # null, by: {id, username} or null, name (renamed only)}; null on a text message.
    system = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_room_seq_unique"),
            models.UniqueConstraint(fields=["sender", "client_msg_id"], name="message_idempotency_key"),
            # A system line has no sender, which the key above cannot tell apart (NULLs are
            # distinct): its envelope's event_id is its client_msg_id, stored once.
            models.UniqueConstraint(
                fields=["client_msg_id"], condition=models.Q(kind="system"), name="message_system_line_once"
            ),
        ]
        indexes = [
            # Only replies are in these: finding the replies to a deleted message, or to an erased
            # account's messages, costs nothing for the messages that are not replies.
            models.Index(
                "room",
                Cast(KT("reply_to__seq"), models.BigIntegerField()),
                name="message_replies_by_seq",
                condition=models.Q(reply_to__isnull=False),
            ),
            models.Index(
                Cast(KT("reply_to__sender__id"), models.BigIntegerField()),
                name="message_replies_by_sender",
                condition=models.Q(reply_to__isnull=False),
            ),
            # Only system lines: the lines naming a deleted account, found without a scan.
            models.Index(
                Cast(KT("system__user__id"), models.BigIntegerField()),
                name="message_system_by_user",
                condition=models.Q(kind="system"),
            ),
            models.Index(
                Cast(KT("system__by__id"), models.BigIntegerField()),
                name="message_system_by_actor",
                condition=models.Q(kind="system"),
            ),
            # Retention (retention.py): a room's oldest messages still standing, found without
            # walking the ones deleted already or the newer ones.
            models.Index(
                fields=["room", "created_at"],
                name="message_alive_by_age",
                condition=models.Q(deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"


class Reaction(models.Model):
    """One user's emoji on one message, from the fixed set ``REACTIONS``."""

    # The users' choice, in the order clients show them (KakaoTalk's and Slack's everyday six).
    REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🎉")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reactions")
    emoji = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also the index of a history page's one query (by message).
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"
