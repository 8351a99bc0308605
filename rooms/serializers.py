"""REST shapes of rooms, participants and read positions: requests in, answers out."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from streams.realtime.presence import AWAY, OFFLINE, ONLINE, presence_read
from streams.realtime.protocol import BIGINT_MAX, DELETED_USER
from streams.web.api import JSONBodySerializer

from .models import Participant, Room


# -- requests -------------------------------------------------------------------------------------
def _topic_field() -> serializers.CharField:
    # The length is the service's to check: a topic that is too long is `too_large`, as a body is.
    return serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=f"What the room is about, one line of at most {Room._meta.get_field('topic').max_length} "
        "characters (longer: `too_large`); blank clears it. Group rooms only.",
    )


class RoomCreateSerializer(JSONBodySerializer):
    """``{kind: "group", name, topic?, members?, is_public?}`` or ``{kind: "direct", user}``."""

    kind = serializers.ChoiceField(choices=Room.Kind.choices)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    topic = _topic_field()
    members = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX), required=False, max_length=1000
    )
    is_public = serializers.BooleanField(required=False, default=False)
    user = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, required=False)

    def validate(self, attrs):
        if attrs["kind"] == Room.Kind.GROUP and not (attrs.get("name") or "").strip():
            raise serializers.ValidationError({"name": "A group room needs a name."})
        if attrs["kind"] == Room.Kind.DIRECT and "user" not in attrs:
            raise serializers.ValidationError({"user": "A direct room needs the other user's id."})
        if attrs["kind"] == Room.Kind.DIRECT and attrs.get("topic"):
            raise serializers.ValidationError({"topic": "A direct room has no topic."})
        return attrs


class RoomUpdateSerializer(JSONBodySerializer):
    name = serializers.CharField(max_length=100, required=False)
    topic = _topic_field()
    is_public = serializers.BooleanField(required=False)
    retention_days = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=36500,
        help_text="Owner only: messages older than this many days are deleted; 0 keeps them for ever, "
        "null follows the server's period (CHAT_RETENTION_DAYS).",
    )


class ParticipantAddSerializer(JSONBodySerializer):
    user = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)


class ParticipantUpdateSerializer(JSONBodySerializer):
    role = serializers.ChoiceField(choices=Participant.Role.choices)


class ReadSerializer(JSONBodySerializer):
    seq = serializers.IntegerField(min_value=0, max_value=BIGINT_MAX, help_text="The newest message read.")


class MarkUnreadSerializer(JSONBodySerializer):
    seq = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, help_text="The first message to show as unread.")


# -- answers --------------------------------------------------------------------------------------
class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(allow_null=True)


class PresenceSerializer(serializers.Serializer):
    """Whether a user is around (docs/protocol.md, "Presence"); live changes come as ``presence.updated``."""

    status = serializers.ChoiceField(
        choices=[ONLINE, AWAY, OFFLINE],
        help_text="`online`: a socket open and active lately; `away`: sockets open, idle for CHAT_AWAY_AFTER_S; "
        "`offline`: no socket on any server.",
    )
    last_seen = serializers.DateTimeField(
        allow_null=True, help_text="The last activity; for an offline user, when their last socket went. Null: unknown."
    )


class OtherUserSerializer(UserRefSerializer):
    presence = PresenceSerializer(
        allow_null=True, help_text="Null once they left the room or their account is gone (or deactivated)."
    )


class LastMessageSerializer(serializers.Serializer):
    seq = serializers.IntegerField(source="room.last_seq")
    preview = serializers.CharField(source="room.last_message_preview")
    at = serializers.DateTimeField(source="room.last_message_at")


class RoomSerializer(serializers.Serializer):
    """A room as one member sees it: a row of ``rooms.selectors.room_list_for_user``."""

    id = serializers.IntegerField(source="room_id")
    kind = serializers.ChoiceField(source="room.kind", choices=Room.Kind.choices)
    name = serializers.CharField(source="room.name")
    title = serializers.SerializerMethodField()
    topic = serializers.CharField(source="room.topic", help_text="What a group room is about; empty when unset.")
    is_public = serializers.BooleanField(source="room.is_public")
    retention_days = serializers.IntegerField(
        source="room.retention_days",
        allow_null=True,
        help_text="Messages older than this many days are deleted; 0: kept for ever; null: the server's period.",
    )
    created_at = serializers.DateTimeField(source="room.created_at")
    role = serializers.ChoiceField(choices=Participant.Role.choices, help_text="Your role in the room.")
    member_count = serializers.IntegerField()
    last_seq = serializers.IntegerField(source="room.last_seq", help_text="The seq of the newest message.")
    last_read_seq = serializers.IntegerField(help_text="The seq of the newest message you have read.")
    unread = serializers.IntegerField(help_text="How many messages you have not read yet.")
    mentions = serializers.IntegerField(help_text="How many of those mention you (@you, or @room).")
    muted = serializers.BooleanField(help_text="Muted by you: no unread badge, no notification; mentions still count.")
    last_message = serializers.SerializerMethodField()
    other_user = serializers.SerializerMethodField()
    read_only = serializers.BooleanField(
        help_text="A direct room whose other person's account is gone (deleted or deactivated): "
        "its history stays readable, sending is refused with `forbidden`."
    )

    def get_title(self, participant: Participant) -> str:
        """How the room is named to you: a group by its name, a direct room by the other person
        (``"deleted user"`` once their account is gone)."""
        if participant.room.kind == Room.Kind.DIRECT:
            return participant.other_username or DELETED_USER
        return participant.room.name

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, participant: Participant) -> dict | None:
        """The newest message's seq, time and preview; null in a room without messages."""
        if not participant.room.last_seq:
            return None
        return LastMessageSerializer(participant).data

    @extend_schema_field(OtherUserSerializer(allow_null=True))
    def get_other_user(self, participant: Participant) -> dict | None:
        """For a direct room, the other user (``username`` null once their account is gone) and their
        presence while they are in the room."""
        if participant.room.kind != Room.Kind.DIRECT:
            return None
        return {
            "id": participant.other_user_id,
            "username": participant.other_username,
            "presence": getattr(participant, "other_presence", None),
        }


class ParticipantSerializer(serializers.Serializer):
    user = UserRefSerializer()
    role = serializers.ChoiceField(choices=Participant.Role.choices)
    joined_at = serializers.DateTimeField()
    last_read_seq = serializers.IntegerField()
    presence = serializers.SerializerMethodField()

    @extend_schema_field(PresenceSerializer)
    def get_presence(self, participant: Participant) -> dict:
        """The member's presence: read with the list (one Redis round trip), or for this one member."""
        known = getattr(participant, "presence", None)
        return known if known is not None else presence_read([participant.user_id])[participant.user_id]


class ReadPositionSerializer(serializers.Serializer):
    last_read_seq = serializers.IntegerField()


class ReaderSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    last_read_seq = serializers.IntegerField()


class MessageReadersSerializer(serializers.Serializer):
    """Who has read up to message ``seq``, and how many members have not (KakaoTalk's "1")."""

    room = serializers.IntegerField()
    seq = serializers.IntegerField()
    unread_count = serializers.IntegerField(help_text="Members who have not read the message yet.")
    readers = ReaderSerializer(many=True)
