"""REST shapes of rooms, participants and read positions: requests in, answers out."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Participant, Room


# -- requests -------------------------------------------------------------------------------------
class RoomCreateSerializer(serializers.Serializer):
    """``{kind: "group", name, members, is_public?}`` or ``{kind: "direct", user}``."""

    kind = serializers.ChoiceField(choices=Room.Kind.choices)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    members = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=500)
    is_public = serializers.BooleanField(required=False, default=False)
    user = serializers.IntegerField(min_value=1, required=False)

    def validate(self, attrs):
        if attrs["kind"] == Room.Kind.DIRECT and "user" not in attrs:
            raise serializers.ValidationError({"user": "A direct room needs the other `user`."})
        if attrs["kind"] == Room.Kind.GROUP and not (attrs.get("name") or "").strip():
            raise serializers.ValidationError({"name": "A group room needs a name."})
        return attrs


class RoomUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    is_public = serializers.BooleanField(required=False)


class ParticipantAddSerializer(serializers.Serializer):
    user = serializers.IntegerField(min_value=1)


class ParticipantUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Participant.Role.choices)


class ReadSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=0, help_text="The newest message read; the position never moves back.")


class MarkUnreadSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, help_text="The first message to show as unread again.")


# -- answers --------------------------------------------------------------------------------------
class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class RoomSerializer(serializers.Serializer):
    """A room as its member sees it: counts, read position and last message.

    Serialises the Participant rows of ``rooms.selectors.room_list_for_user``.
    """

    id = serializers.IntegerField(source="room_id")
    kind = serializers.ChoiceField(source="room.kind", choices=Room.Kind.choices)
    name = serializers.CharField(source="room.name")
    is_public = serializers.BooleanField(source="room.is_public")
    role = serializers.ChoiceField(choices=Participant.Role.choices, help_text="Your role in the room.")
    member_count = serializers.IntegerField()
    last_seq = serializers.IntegerField(source="room.last_seq", help_text="The seq of the newest message.")
    last_read_seq = serializers.IntegerField(help_text="The seq of the newest message you have read.")
    unread = serializers.IntegerField(help_text="How many messages you have not read yet.")
    last_message_at = serializers.DateTimeField(source="room.last_message_at", allow_null=True)
    last_message_preview = serializers.CharField(source="room.last_message_preview")
    other_user = serializers.SerializerMethodField(help_text="For a direct room, the other person (null once gone).")
    created_at = serializers.DateTimeField(source="room.created_at")

    @extend_schema_field(UserRefSerializer(allow_null=True))
    def get_other_user(self, participant) -> dict | None:
        if participant.other_user_id is None:
            return None
        return {"id": participant.other_user_id, "username": participant.other_username}


class ParticipantSerializer(serializers.Serializer):
    user = UserRefSerializer()
    role = serializers.ChoiceField(choices=Participant.Role.choices)
    joined_at = serializers.DateTimeField()
    last_read_seq = serializers.IntegerField()


class ReadPositionSerializer(serializers.Serializer):
    last_read_seq = serializers.IntegerField()


class MessageReadersSerializer(serializers.Serializer):
    """Who has read up to message ``seq``, and how many members have not."""

    room = serializers.IntegerField()
    seq = serializers.IntegerField()
    unread_count = serializers.IntegerField(help_text="Members who have not read it yet (KakaoTalk's number).")
    readers = ParticipantSerializer(many=True)
