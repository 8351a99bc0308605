"""Rooms and their participants, with each participant's last-read position."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Value

from streams.realtime.protocol import DELETED_USER


class Room(models.Model):
    """A group room or a direct room between two users.

    ``last_seq``, ``last_message_at`` and ``last_message_preview`` are written by the persistence
    consumer in the same transaction as the message, so listing rooms needs no join on messages.
    """

    class Kind(models.TextChoices):
        DIRECT = "direct", "Direct"
        GROUP = "group", "Group"

    kind = models.CharField(max_length=6, choices=Kind.choices, default=Kind.GROUP)
    name = models.CharField(max_length=100, blank=True)
    # What a group room is about, shown under its name; direct rooms have none. The database
    # default too: a server still running the previous release inserts rooms without it.
    topic = models.CharField(max_length=250, blank=True, default="", db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Anyone may join a public group room; others are invite-only.
    is_public = models.BooleanField(default=False)
    # "smaller_id:larger_id" for direct rooms: makes a direct room unique per pair of users.
    direct_key = models.CharField(max_length=41, null=True, blank=True, unique=True, editable=False)
    last_seq = models.BigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=140, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Messages older than this many days are deleted (chat_messages/retention.py); NULL: the
    # site's CHAT_RETENTION_DAYS, 0: kept for ever whatever the site says.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    # A legal hold (set by a site admin in the admin, audited) suspends retention for the room.
    # Who set it by username, as it was: no link to the account, which may go before the hold
    # does (the audit entry links to it while it exists), and deleting an account costs no query here.
    legal_hold = models.BooleanField(default=False, db_default=False)
    legal_hold_by = models.CharField(max_length=150, blank=True, default="", db_default="", editable=False)
    legal_hold_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["-last_message_at"], name="room_activity_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="group") | models.Q(direct_key__isnull=False),
                name="direct_room_has_key",
            )
        ]

    def __str__(self) -> str:
        # A direct room is named by its pair when the query brought their names along
        # (rooms.selectors.rooms_with_pair_names: no query per row here).
        pair = getattr(self, "pair_names", None)
        if self.kind == self.Kind.DIRECT and pair is not None:
            return " ↔ ".join(name or DELETED_USER for name in pair)
        return self.name or f"{self.get_kind_display()} room {self.pk}"

    @property
    def pair_names(self) -> tuple[str | None, str | None] | None:
        """A direct room's two usernames (None for a deleted account), if annotated; else None."""
        if not hasattr(self, "pair_low_name"):
            return None
        return self.pair_low_name, self.pair_high_name


class Participant(models.Model):
    """A user's membership of a room, with their role, last-read position and mentions."""

    MENTIONS_KEPT = 100

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    # The roles that manage a room: invite and remove people, rename it, delete others' messages.
    MANAGERS = (Role.OWNER, Role.ADMIN)

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations")
    role = models.CharField(max_length=6, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    # The seq of the newest message this member has read: the seed's "last read position".
    last_read_seq = models.BigIntegerField(default=0)
    # Seqs of recent messages that mention this member (at most MENTIONS_KEPT, written by the
    # persistence consumer): those above last_read_seq are the room list's mention count, with
    # no join on messages. A new mention drops those read by then, so marking a room unread
    # brings back only the mentions not dropped yet.
    # (Database defaults too: the release before this one inserts participants without them.)
    mention_seqs = ArrayField(models.BigIntegerField(), default=list, db_default=Value([]), blank=True)
    # Muted: no unread badge and no notification for this room (mentions still count).
    muted = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="one_participant_per_user")]
        indexes = [models.Index(fields=["user", "room"], name="participant_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.role})"


class RoomSanction(models.Model):
    """A site moderator's sanction of a user in one room: a mute (no sending) or a ban (out, and
    kept out), until a time or for good.

    Not the member's own notification mute (``Participant.muted``). Active while not lifted and
    ``until`` is null or still ahead: it expires by itself, no task needed. Kept after it ends, for
    the record (who imposed it, why, who lifted it).
    """

    class Kind(models.TextChoices):
        MUTE = "mute", "Mute (cannot send)"
        BAN = "ban", "Ban (removed, cannot rejoin)"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sanctions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_sanctions")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: until lifted.")
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            # Only sanctions not lifted: what every check reads, whatever the history's size.
            models.Index(
                fields=["user", "room", "kind"],
                name="room_sanction_open_idx",
                condition=models.Q(lifted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display().split(' ')[0]} of {self.user_id} in {self.room_id}"

    def is_active(self, now=None) -> bool:
        """Not lifted, and not expired at ``now``."""
        from django.utils import timezone

        now = now or timezone.now()
        return self.lifted_at is None and (self.until is None or self.until > now)
