"""REST shapes of the talk drawer: what clients send, and (for the schema) what they get back."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from attachments.serializers import MessageAttachmentSerializer
from streams.web.api import JSONBodySerializer, QuerySerializer

from .models import TAG_MAX_CHARS
from .selectors import PAGE_SIZE, PAGE_SIZE_MAX, QUERY_MAX_CHARS


class DrawerJumpSerializer(serializers.Serializer):
    room = serializers.IntegerField()
    seq = serializers.IntegerField()


class DrawerEntrySerializer(serializers.Serializer):
    """An entry as answered (built by ``drawer.selectors.drawer_entry_payload``)."""

    id = serializers.IntegerField()
    message = serializers.IntegerField(allow_null=True, help_text="The original's id; null once it is gone.")
    room = serializers.IntegerField(allow_null=True, help_text="The room's id; null once the room is deleted.")
    room_name = serializers.CharField(help_text="The room's name when the message was saved.")
    sender_name = serializers.CharField(help_text='The sender\'s name when saved, or "deleted user".')
    body = serializers.CharField(help_text="The body as saved, kept after the original is edited or deleted.")
    message_seq = serializers.IntegerField()
    message_created_at = serializers.DateTimeField()
    attachments = MessageAttachmentSerializer(
        many=True, help_text="The files the message carried when saved; kept (and fetchable) while the entry is."
    )
    note = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    saved_at = serializers.DateTimeField()
    jump = DrawerJumpSerializer(
        allow_null=True,
        help_text="Where to open the original: only while it exists and you are still in its room.",
    )
    current_body = serializers.CharField(allow_null=True, help_text="The original's body now, when `jump` is set.")
    edited_since_saved = serializers.BooleanField()


class DrawerPageSerializer(serializers.Serializer):
    results = DrawerEntrySerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for older entries; null at the end."
    )


class DrawerRoomChoiceSerializer(serializers.Serializer):
    room = serializers.IntegerField()
    room_name = serializers.CharField()
    count = serializers.IntegerField()


class DrawerTagChoiceSerializer(serializers.Serializer):
    tag = serializers.CharField()
    count = serializers.IntegerField()


class DrawerFiltersSerializer(serializers.Serializer):
    rooms = DrawerRoomChoiceSerializer(many=True)
    tags = DrawerTagChoiceSerializer(many=True)


DATE_OR_DATE_TIME = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}


@extend_schema_field(DATE_OR_DATE_TIME)
class DateOrDateTimeField(serializers.DateTimeField):
    """An ISO date-time, or a date alone (its midnight): documented as either."""


@extend_schema_field(DATE_OR_DATE_TIME)
class UntilField(DateOrDateTimeField):
    """An exclusive upper bound; a date alone (``2026-01-31``) means up to the end of that day."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if isinstance(value, str) and len(value.strip()) == len("2026-01-31"):
            try:
                moment += timedelta(days=1)
            except OverflowError:
                # The end of 9999-12-31 is past the last moment Python has: nothing is saved later.
                self.fail("overflow")
        return moment


class DrawerListQuerySerializer(QuerySerializer):
    room = serializers.IntegerField(required=False, min_value=1, help_text="Entries saved from this room.")
    tag = serializers.ListField(
        child=serializers.CharField(max_length=TAG_MAX_CHARS),
        required=False,
        help_text="Entries carrying this tag (repeat for entries carrying all of them).",
    )
    since = DateOrDateTimeField(required=False, help_text="Saved at or after (ISO date or date-time).")
    until = UntilField(required=False, help_text="Saved before (a date alone includes that whole day).")
    q = serializers.CharField(
        required=False, max_length=QUERY_MAX_CHARS, help_text="Text in the body, note, sender, room or a tag."
    )
    cursor = serializers.CharField(required=False, help_text="The `next_cursor` of the previous page.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=PAGE_SIZE_MAX, default=PAGE_SIZE)


class DrawerSaveSerializer(JSONBodySerializer):
    """Name the message by ``message`` (its id), or by ``room`` and ``seq``."""

    message = serializers.IntegerField(required=False, min_value=1)
    room = serializers.IntegerField(required=False, min_value=1)
    seq = serializers.IntegerField(required=False, min_value=1)
    note = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    tags = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)

    def validate(self, attrs):
        by_id = "message" in attrs
        by_seq = "room" in attrs or "seq" in attrs
        if by_id == by_seq or (by_seq and not ("room" in attrs and "seq" in attrs)):
            raise serializers.ValidationError("Name the message by `message` alone, or by `room` and `seq`.")
        return attrs


class DrawerUpdateSerializer(JSONBodySerializer):
    note = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    tags = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send `note`, `tags` or both.")
        return attrs
