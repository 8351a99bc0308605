"""REST endpoints of the messages app: history, send, edit, delete. One call thick."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from rooms.api import ROOM_ID, SEQ
from streams.web.api import ChatAPIView, SendThrottle, error_responses, on_off_schema

from . import selectors, services
from .models import Reaction
from .serializers import (
    AcceptedSerializer,
    EditSerializer,
    HistoryPageSerializer,
    HistoryQuerySerializer,
    ReactionsSerializer,
    SendSerializer,
)


@extend_schema(parameters=[ROOM_ID])
class RoomMessagesView(ChatAPIView):
    write_throttle = SendThrottle  # sending has its own, stricter rate

    @extend_schema(
        operation_id="messages_history",
        parameters=[HistoryQuerySerializer],
        responses={200: HistoryPageSerializer, **error_responses(400, 403, 404)},
        description="History in seq order, each message with its unread counter. Non-members get 403.",
    )
    def get(self, request, room_id: int):
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.history_page(room_id=room_id, user_id=request.user.pk, **query.validated_data)
        return Response(page)

    @extend_schema(
        operation_id="messages_send",
        request=SendSerializer,
        responses={202: AcceptedSerializer, **error_responses(400, 403, 404, 413, 503)},
        description="Accepted once Kafka acknowledged it; stored and broadcast as `message.new` shortly after. "
        "Re-sending the same client_msg_id stores nothing new.",
    )
    def post(self, request, room_id: int):
        data = SendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        msg_id = services.message_send(user=request.user, room_id=room_id, **data.validated_data)
        return Response({"client_msg_id": str(msg_id)}, status=status.HTTP_202_ACCEPTED)


@extend_schema(parameters=[ROOM_ID, SEQ])
class MessageView(ChatAPIView):
    @extend_schema(
        operation_id="messages_edit",
        request=EditSerializer,
        responses={202: None, **error_responses(400, 403, 404, 413, 503)},
        description="Edit your own message; members get `message.updated` once applied.",
    )
    def patch(self, request, room_id: int, seq: int):
        data = EditSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.message_edit_request(user=request.user, room_id=room_id, seq=seq, body=data.validated_data["body"])
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="messages_delete",
        responses={202: None, **error_responses(403, 404, 503)},
        description=(
            "Delete your own message, or as the room's owner or an admin anyone's; its seq stays, its body is"
            " erased; members get `message.deleted`."
        ),
    )
    def delete(self, request, room_id: int, seq: int):
        services.message_delete_request(user=request.user, room_id=room_id, seq=seq)
        return Response(status=status.HTTP_202_ACCEPTED)


EMOJI = OpenApiParameter(
    "emoji", str, OpenApiParameter.PATH, enum=list(Reaction.REACTIONS), description="The reaction (percent-encoded)."
)


@extend_schema(parameters=[ROOM_ID, SEQ, EMOJI])
@on_off_schema(
    response=ReactionsSerializer,
    errors=(400, 403, 404),
    put={
        "operation_id": "messages_react",
        "description": "Add my reaction; members get `reaction.added`. Adding it again changes nothing.",
    },
    delete={
        "operation_id": "messages_unreact",
        "description": "Remove my reaction; members get `reaction.removed`. Removing one I do not have changes nothing.",
    },
)
class ReactionView(ChatAPIView):
    """Reactions need no body: the emoji is in the path, so adding and removing are idempotent."""

    def _answer(self, request, room_id: int, seq: int, emoji: str, *, on: bool) -> Response:
        changed = services.reaction_set(user=request.user, room_id=room_id, seq=seq, emoji=emoji, on=on)
        message = selectors.message_get(room_id=room_id, user_id=request.user.pk, seq=seq)
        return Response(
            {"changed": changed, "reactions": selectors.reactions_of(message_ids=[message.pk]).get(message.pk, [])}
        )

    def put(self, request, room_id: int, seq: int, emoji: str):
        return self._answer(request, room_id, seq, emoji, on=True)

    def delete(self, request, room_id: int, seq: int, emoji: str):
        return self._answer(request, room_id, seq, emoji, on=False)
