"""REST views of rooms, participants and read positions. Thin: parse, call a service, format.

A non-member gets ``not_member`` (403) whether or not the room exists, so room ids cannot be
probed; a member without the needed role gets ``forbidden``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from streams.web.api import ChatAPIView, ReadThrottle, error_responses, on_off_schema, path_id, validated

from . import selectors, services
from .models import Room
from .serializers import (
    MarkUnreadSerializer,
    MessageReadersSerializer,
    ParticipantAddSerializer,
    ParticipantSerializer,
    ParticipantUpdateSerializer,
    ReadPositionSerializer,
    ReadSerializer,
    RoomCreateSerializer,
    RoomSerializer,
    RoomUpdateSerializer,
)

ROOM_ID = path_id("room_id", "The room's id.")
USER_ID = path_id("user_id", "The member's user id.")
SEQ = path_id("seq", "The message's seq in the room.")


def _summary(request, room_id: int) -> dict:
    return RoomSerializer(selectors.room_summary_for_member(room_id=room_id, user_id=request.user.pk)).data


class RoomsView(ChatAPIView):
    @extend_schema(
        operation_id="rooms_list",
        summary="The user's rooms, latest activity first, with unread counts and last message",
        responses={200: RoomSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        rooms = selectors.room_list_for_user(user_id=request.user.pk)
        return Response(RoomSerializer(rooms, many=True).data)

    @extend_schema(
        operation_id="rooms_create",
        summary="Create a group room, or open the direct room with a user",
        description="A direct room is unique per pair of users: opening it again answers 200 with the existing one.",
        request=RoomCreateSerializer,
        responses={201: RoomSerializer, 200: RoomSerializer, **error_responses(400, 413)},
    )
    def post(self, request):
        data = validated(RoomCreateSerializer, request.data)
        created = True
        if data["kind"] == Room.Kind.GROUP:
            room = services.room_create_group(
                owner=request.user,
                name=data["name"],
                topic=data.get("topic", ""),
                member_ids=data.get("members", []),
                is_public=data["is_public"],
            )
        else:
            other = selectors.active_user_get(user_id=data["user"])
            room, created = services.room_open_direct(user=request.user, other=other)
        return Response(_summary(request, room.pk), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(parameters=[ROOM_ID])
class RoomDetailView(ChatAPIView):
    @extend_schema(
        operation_id="rooms_retrieve",
        summary="One room with the user's read position and unread count",
        responses={200: RoomSerializer, **error_responses(403, 404)},
    )
    def get(self, request, room_id: int):
        return Response(_summary(request, room_id))

    @extend_schema(
        operation_id="rooms_partial_update",
        summary="Rename a group room, change its topic or open it to joining (owner or admin)",
        description="Fields left out stay as they are. A direct room has neither name nor topic: changing them is "
        "`invalid`. Members get `room.updated`, and a rename leaves a system line in the room.",
        request=RoomUpdateSerializer,
        responses={200: RoomSerializer, **error_responses(400, 403, 404, 413)},
    )
    def patch(self, request, room_id: int):
        data = validated(RoomUpdateSerializer, request.data)
        services.room_update(user_id=request.user.pk, room_id=room_id, **data)
        return Response(_summary(request, room_id))

    @extend_schema(
        operation_id="rooms_destroy",
        summary="Delete a room with its messages and read positions (owner)",
        responses={204: None, **error_responses(403, 404)},
    )
    def delete(self, request, room_id: int):
        services.room_delete(user_id=request.user.pk, room_id=room_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[ROOM_ID])
class RoomJoinView(ChatAPIView):
    @extend_schema(
        operation_id="rooms_join",
        summary="Join a public group room",
        description="A private room, or a room that does not exist, answers alike. Members get `participant.added` "
        "and the room a system line.",
        request=None,
        responses={201: RoomSerializer, 200: RoomSerializer, **error_responses(403, 404)},
    )
    def post(self, request, room_id: int):
        _, joined = services.participant_join(user_id=request.user.pk, room_id=room_id)
        return Response(_summary(request, room_id), status=status.HTTP_201_CREATED if joined else status.HTTP_200_OK)


@extend_schema(parameters=[ROOM_ID])
class ParticipantsView(ChatAPIView):
    @extend_schema(
        operation_id="rooms_participants_list",
        summary="The room's members, owner first",
        responses={200: ParticipantSerializer(many=True), **error_responses(403, 404)},
    )
    def get(self, request, room_id: int):
        participants = selectors.participant_list(room_id=room_id, user_id=request.user.pk)
        return Response(ParticipantSerializer(participants, many=True).data)

    @extend_schema(
        operation_id="rooms_participants_create",
        summary="Invite a user into a group room (owner or admin)",
        request=ParticipantAddSerializer,
        responses={201: ParticipantSerializer, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request, room_id: int):
        data = validated(ParticipantAddSerializer, request.data)
        participant = services.participant_invite(actor_id=request.user.pk, room_id=room_id, user_id=data["user"])
        return Response(ParticipantSerializer(participant).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[ROOM_ID, USER_ID])
class ParticipantDetailView(ChatAPIView):
    @extend_schema(
        operation_id="rooms_participants_partial_update",
        summary="Change a member's role (owner); making someone owner hands the room over",
        request=ParticipantUpdateSerializer,
        responses={200: ParticipantSerializer, **error_responses(400, 403, 404)},
    )
    def patch(self, request, room_id: int, user_id: int):
        data = validated(ParticipantUpdateSerializer, request.data)
        participant = services.participant_role_set(
            actor_id=request.user.pk, room_id=room_id, user_id=user_id, role=data["role"]
        )
        return Response(ParticipantSerializer(participant).data)

    @extend_schema(
        operation_id="rooms_participants_destroy",
        summary="Remove a member (owner or admin); removing yourself leaves the room",
        description="The owner leaving hands the room to the oldest admin, else the oldest member; "
        "the last member leaving deletes the room.",
        responses={204: None, **error_responses(403, 404)},
    )
    def delete(self, request, room_id: int, user_id: int):
        services.participant_remove(actor_id=request.user.pk, room_id=room_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[ROOM_ID])
@on_off_schema(
    response=RoomSerializer,
    errors=(403, 404),
    put={
        "operation_id": "rooms_mute",
        "summary": "Mute the room for me",
        "description": "No unread badge and no notification for this room; mentions still count.",
    },
    delete={"operation_id": "rooms_unmute", "summary": "Unmute the room for me"},
)
class RoomMuteView(ChatAPIView):
    """Muting is idempotent and carries no body: PUT mutes, DELETE unmutes."""

    def _answer(self, request, room_id: int, *, muted: bool) -> Response:
        services.participant_mute(user_id=request.user.pk, room_id=room_id, muted=muted)
        return Response(_summary(request, room_id))

    def put(self, request, room_id: int):
        return self._answer(request, room_id, muted=True)

    def delete(self, request, room_id: int):
        return self._answer(request, room_id, muted=False)


class _ReadPositionView(ChatAPIView):
    """Moves the user's last-read position by ``move``; the routes differ only in the rule."""

    body: type = ReadSerializer
    move = staticmethod(services.read_position_advance)

    def post(self, request, room_id: int):
        data = validated(self.body, request.data)
        position = self.move(user_id=request.user.pk, room_id=room_id, seq=data["seq"])
        return Response({"last_read_seq": position})


def _read_position_schema(operation_id: str, summary: str, body: type, description: str):
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            summary=summary,
            description=description,
            request=body,
            responses={200: ReadPositionSerializer, **error_responses(400, 403, 404)},
        )
    )


@extend_schema(parameters=[ROOM_ID])
@_read_position_schema(
    "rooms_read",
    "Move the user's last-read position forward (never backward)",
    ReadSerializer,
    "Moves `last_read_seq` up to `seq` (a lower one changes nothing); the unread count and the"
    " other members' per-message counters follow, live.",
)
class RoomReadView(_ReadPositionView):
    write_throttle = ReadThrottle  # clients report reading often; it is cheap and idempotent


@extend_schema(parameters=[ROOM_ID])
@_read_position_schema(
    "rooms_mark_unread",
    "Mark the room unread from message `seq` on (last_read_seq becomes seq - 1)",
    MarkUnreadSerializer,
    "Sets `last_read_seq` to `seq - 1`, backward too, so the room lists as unread from that message.",
)
class RoomUnreadView(_ReadPositionView):
    body = MarkUnreadSerializer
    move = staticmethod(services.read_position_mark_unread)


@extend_schema(parameters=[ROOM_ID, SEQ])
class MessageReadersView(ChatAPIView):
    @extend_schema(
        operation_id="rooms_messages_readers",
        summary="Who has read up to message `seq`, and how many members have not",
        responses={200: MessageReadersSerializer, **error_responses(403, 404)},
    )
    def get(self, request, room_id: int, seq: int):
        readers, unread = selectors.message_readers(room_id=room_id, user_id=request.user.pk, seq=seq)
        return Response(
            MessageReadersSerializer({"room": room_id, "seq": seq, "unread_count": unread, "readers": readers}).data
        )
