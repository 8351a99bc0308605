"""REST shapes of the attachments app (for the schema; answers are built by its selectors)."""

from rest_framework import serializers

from .models import Attachment


class MessageAttachmentSerializer(serializers.Serializer):
    """An attachment as a message (or a drawer entry) carries it."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Attachment.Kind.choices, help_text="`image` (with a thumbnail) or `file`.")
    name = serializers.CharField(help_text="The name it was uploaded with (display only).")
    content_type = serializers.CharField(help_text="Read from the content when it was uploaded.")
    size = serializers.IntegerField(help_text="Bytes.")
    width = serializers.IntegerField(
        allow_null=True, help_text="Pixels, as shown (after EXIF orientation); null for files."
    )
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(help_text="`/api/v1/attachments/{id}/file/` (needs your credentials).")
    thumbnail_url = serializers.CharField(allow_null=True, help_text="Images only: at most 320 px on its longer side.")


class AttachmentSerializer(MessageAttachmentSerializer):
    """The attachment object: what an upload answers."""

    room = serializers.IntegerField(allow_null=True, help_text="The room it was uploaded to; null once deleted.")
    created_at = serializers.DateTimeField()


class AttachmentDetailSerializer(AttachmentSerializer):
    signed_url = serializers.CharField(
        help_text="`/files/<token>/<name>`: the file without credentials, until CHAT_ATTACHMENT_URL_TTL_S pass."
    )
    signed_thumbnail_url = serializers.CharField(allow_null=True, help_text="The same for the thumbnail.")


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="The file (at most CHAT_ATTACHMENT_MAX_BYTES). Its type is read from its content; "
        "a name whose extension claims another type is refused."
    )
