"""REST shapes of the messages app."""

from rest_framework import serializers

from attachments.serializers import MessageAttachmentSerializer
from streams.realtime.protocol import BIGINT_MAX, ROOM_EVENTS
from streams.web.api import JSONBodySerializer, QuerySerializer


class SenderSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField()


class ReactionSerializer(serializers.Serializer):
    emoji = serializers.CharField()
    count = serializers.IntegerField()
    users = SenderSerializer(many=True, help_text="Who reacted, in the order they did.")


class QuoteSerializer(serializers.Serializer):
    """What a reply shows of the message it replies to, as it was when the reply was stored."""

    seq = serializers.IntegerField()
    sender = SenderSerializer()
    body = serializers.CharField(allow_blank=True, help_text="Its start; empty once it is deleted.")
    deleted = serializers.BooleanField(help_text="Deleted since, or never stored in this room.")


class MessageSenderSerializer(SenderSerializer):
    username = serializers.CharField(allow_null=True, help_text="Null only on a system line, which has no sender.")


class SystemLineSerializer(serializers.Serializer):
    """The facts of a system line, as they were when it was stored."""

    event = serializers.ChoiceField(choices=ROOM_EVENTS)
    user = SenderSerializer(allow_null=True, help_text="Whom it is about (who renamed, for renamed).")
    by = SenderSerializer(allow_null=True, help_text="Who added or removed them; null otherwise.")
    name = serializers.CharField(required=False, help_text="The room's new name (renamed only).")


class MessageSerializer(serializers.Serializer):
    """A message as clients see it (the same shape as the WebSocket's ``message.new``)."""

    id = serializers.IntegerField()
    room = serializers.IntegerField()
    seq = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=["text", "system"],
        help_text="`system`: a line about the room (joins, leaves, removals, renames) with no sender: "
        "`sender` is {id: null, username: null}, `body` its text, `system` its facts.",
    )
    sender = MessageSenderSerializer()
    body = serializers.CharField(allow_blank=True)
    client_msg_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    deleted = serializers.BooleanField()
    unread_count = serializers.IntegerField(help_text="Members who have not read this message yet.")
    reactions = ReactionSerializer(many=True)
    reply_to = QuoteSerializer(allow_null=True, help_text="The message this one replies to; null if none.")
    mentions = serializers.ListField(
        child=serializers.IntegerField(), help_text="The ids of the members it mentions (@name, or @room)."
    )
    system = SystemLineSerializer(allow_null=True, help_text="A system line's facts; null on a text message.")
    attachments = MessageAttachmentSerializer(
        many=True, help_text="The files and images it carries, in the order sent; empty when none or deleted."
    )


class HistoryQuerySerializer(QuerySerializer):
    anchor = serializers.RegexField(
        r"^([0-9]+|first_unread|newest)$",
        required=False,
        help_text="A seq, `first_unread` or `newest` (default): a page around it.",
    )
    before = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Older than this seq."
    )
    after = serializers.IntegerField(
        required=False, min_value=0, max_value=BIGINT_MAX, help_text="Newer than this seq."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    def validate(self, attrs):
        if sum(key in attrs for key in ("anchor", "before", "after")) > 1:
            raise serializers.ValidationError("Give at most one of anchor, before, after.")
        return attrs


class HistoryPageSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)
    has_older = serializers.BooleanField(help_text="Ask with before=<first seq> for more.")
    has_newer = serializers.BooleanField(help_text="Ask with after=<last seq> for more.")
    last_read_seq = serializers.IntegerField()
    last_seq = serializers.IntegerField()


class BodyField(serializers.CharField):
    """A message's text. Only its JSON type is checked here: its content is checked by
    ``chat_messages.services.body_validate``, the one rule for every entry (WebSocket, REST, the
    persistence consumer), so every client hears the same error for the same body."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault(
            "help_text", "Non-blank text, at most CHAT_MAX_BODY_BYTES UTF-8 bytes, no control characters."
        )
        super().__init__(trim_whitespace=False, allow_blank=True, **kwargs)
        self.validators = []  # DRF's own NUL check would answer differently from the WebSocket


class SendSerializer(JSONBodySerializer):
    client_msg_id = serializers.UUIDField(help_text="Chosen by the client; re-sending it is a no-op.")
    body = BodyField(
        required=False,
        help_text="Non-blank text, at most CHAT_MAX_BODY_BYTES UTF-8 bytes, no control characters; "
        "may be empty or left out when `attachments` are given.",
    )
    attachments = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        help_text="Ids of attachments you uploaded to this room and have not sent yet "
        "(at most CHAT_ATTACHMENTS_PER_MESSAGE).",
    )
    reply_to = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=BIGINT_MAX,
        help_text="The seq of the message of this room it replies to.",
    )


class AcceptedSerializer(serializers.Serializer):
    client_msg_id = serializers.UUIDField()


class EditSerializer(JSONBodySerializer):
    body = BodyField()


class ReactionsSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the reaction already was (or was not) there.")
    reactions = ReactionSerializer(many=True, help_text="The message's reactions now.")
