"""Request and response shapes of the moderation API (also its OpenAPI schema)."""

from rest_framework import serializers

from streams.web.api import JSONBodySerializer

from .models import Report
from .services import NOTE_MAX_CHARS


class ReportCreateSerializer(JSONBodySerializer):
    reason = serializers.ChoiceField(choices=Report.Reason.values, help_text="spam, abuse or other.")
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=NOTE_MAX_CHARS, trim_whitespace=True,
        help_text="Optional words for the moderators.",
    )  # fmt: skip


class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    room = serializers.IntegerField()
    seq = serializers.IntegerField()
    reason = serializers.CharField()
    note = serializers.CharField()
    status = serializers.CharField(help_text="open, actioned or dismissed.")
    created_at = serializers.DateTimeField()


class WarningSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    dismissed = serializers.BooleanField()


class WarningDismissSerializer(JSONBodySerializer):
    dismissed = serializers.BooleanField(help_text="true: dismiss it (a dismissal cannot be undone).")

    def validate_dismissed(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError("Only `true`: a dismissal cannot be undone.")
        return value


class WarningListSerializer(serializers.Serializer):
    warnings = WarningSerializer(many=True)
