"""REST endpoints of the talk drawer (/api/v1/drawer/): thin adapters over services and selectors.

Every endpoint reads or changes only the requesting user's own entries; another user's entry id
answers 404 ``not_found``, exactly like an id that does not exist.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from streams.web.api import ChatAPIView, ErrorSerializer, path_id

from . import selectors, services
from .serializers import (
    DrawerEntrySerializer,
    DrawerFiltersSerializer,
    DrawerListQuerySerializer,
    DrawerPageSerializer,
    DrawerSaveSerializer,
    DrawerUpdateSerializer,
)

TAGS = ["drawer"]


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHENTICATED = _error("`unauthenticated`: no valid token or session.")
RATE_LIMITED = _error("`rate_limited`: too many requests.")
ENTRY_NOT_FOUND = _error("`not_found`: no such entry in your drawer (another user's entry answers the same).")


def _operation(operation_id: str, summary: str, *, responses: dict, **kwargs):
    """The schema of a drawer operation; every one may answer 401 and 429."""
    return extend_schema(
        tags=TAGS,
        operation_id=operation_id,
        summary=summary,
        responses={**responses, 401: UNAUTHENTICATED, 429: RATE_LIMITED},
        **kwargs,
    )


class DrawerListView(ChatAPIView):
    @_operation(
        "drawer_list",
        "List my drawer",
        description="My saved messages, newest saved first, filtered and cursor-paginated.",
        parameters=[DrawerListQuerySerializer],
        responses={
            200: DrawerPageSerializer,
            400: _error("`invalid`: a bad filter, limit or cursor."),
        },
    )
    def get(self, request):
        params = DrawerListQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        page = selectors.drawer_entries_for_query(user_id=request.user.pk, data=data)
        return Response(
            {"results": [selectors.drawer_entry_payload(e) for e in page.entries], "next_cursor": page.next_cursor}
        )

    @_operation(
        "drawer_save",
        "Save a message to my drawer",
        description=(
            "Save a message of a room I am in, named by `message` (its id) or by `room` and `seq`. "
            "The entry keeps a snapshot of the body, sender, room and time. Saving a message already "
            "in my drawer answers 200 with the existing entry, unchanged (use PATCH to change it)."
        ),
        request=DrawerSaveSerializer,
        responses={
            201: OpenApiResponse(DrawerEntrySerializer, description="Saved: a new entry."),
            200: OpenApiResponse(DrawerEntrySerializer, description="Already in my drawer: the existing entry."),
            400: _error("`invalid`: the message is not named, or bad note or tags."),
            403: _error("`not_member`: the message is in a room I am not in, or no message has that id."),
            404: _error("`not_found`: no such message (or it is deleted) in that room."),
            413: _error("`too_large`: the note is too long."),
        },
    )
    def post(self, request):
        body = DrawerSaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        entry, created = services.drawer_entry_save(
            user=request.user,
            message_id=data.get("message"),
            room_id=data.get("room"),
            seq=data.get("seq"),
            note=data.get("note"),
            tags=data.get("tags"),
        )
        return Response(
            selectors.drawer_entry_payload(entry), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema(parameters=[path_id("entry_id", "The entry's id.")])
class DrawerEntryView(ChatAPIView):
    @_operation(
        "drawer_entry_retrieve",
        "One entry of my drawer",
        responses={200: DrawerEntrySerializer, 404: ENTRY_NOT_FOUND},
    )
    def get(self, request, entry_id: int):
        entry = selectors.drawer_entry_get(user_id=request.user.pk, entry_id=entry_id)
        return Response(selectors.drawer_entry_payload(entry))

    @_operation(
        "drawer_entry_update",
        "Edit an entry's note or tags",
        request=DrawerUpdateSerializer,
        responses={
            200: DrawerEntrySerializer,
            400: _error("`invalid`: neither note nor tags, or bad tags."),
            404: ENTRY_NOT_FOUND,
            413: _error("`too_large`: the note is too long."),
        },
    )
    def patch(self, request, entry_id: int):
        body = DrawerUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry = services.drawer_entry_update(
            user=request.user,
            entry_id=entry_id,
            note=body.validated_data.get("note"),
            tags=body.validated_data.get("tags"),
        )
        return Response(selectors.drawer_entry_payload(entry))

    @_operation(
        "drawer_entry_remove",
        "Remove an entry from my drawer",
        description="Unsave: the message itself is untouched.",
        request=None,
        responses={
            204: OpenApiResponse(description="Removed."),
            404: ENTRY_NOT_FOUND,
        },
    )
    def delete(self, request, entry_id: int):
        services.drawer_entry_remove(user=request.user, entry_id=entry_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DrawerFiltersView(ChatAPIView):
    @_operation(
        "drawer_filters",
        "The choices of my drawer's filters",
        description="The rooms my entries come from and the tags I used, with counts.",
        responses={200: DrawerFiltersSerializer},
    )
    def get(self, request):
        return Response(
            {
                "rooms": selectors.drawer_rooms(user_id=request.user.pk),
                "tags": selectors.drawer_tags(user_id=request.user.pk),
            }
        )
