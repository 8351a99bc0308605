"""Web pages of the chat: the room list and a room.

Thin: authorise, read through the selectors, render. The pages carry their initial data (the
user's rooms, the room's read state and first page, its members) as JSON in the HTML, in the
shapes the REST API and the WebSocket use, so the modules of static/js/chat/ draw the first paint and every
later update with the same code and needs no round trip before showing anything.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rooms import selectors as room_selectors
from rooms.models import Participant, Room
from rooms.serializers import ParticipantSerializer, RoomSerializer
from streams.errors import ChatError
from streams.protocol import BIGINT_MAX

from . import selectors


def _chat_config(request, **extra) -> dict:
    return {"me": {"id": request.user.pk, "username": request.user.username}, **extra}


def _rooms(request) -> list[dict]:
    return RoomSerializer(room_selectors.room_list_for_user(user_id=request.user.pk), many=True).data


@login_required
@require_GET
def room_list(request):
    rooms = _rooms(request)
    return render(request, "chat/room_list.html", {"rooms": rooms, "chat_config": _chat_config(request, rooms=rooms)})


_SEQ = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() is also true for "²", which int() refuses


def _anchor(request) -> int | None:
    # ?at=<seq> opens the room at that message (the drawer's "jump to message"); anything else
    # opens the room as usual (a link is not worth an error page).
    value = request.GET.get("at", "")
    if not _SEQ.fullmatch(value):
        return None
    seq = int(value)
    return seq if 0 < seq <= BIGINT_MAX else None


@login_required
@require_GET
def room_detail(request, room_id: int):
    user_id = request.user.pk
    try:
        summary = room_selectors.room_summary_for_member(room_id=room_id, user_id=user_id)
    except ChatError:
        # A room the user is not in looks exactly like one that does not exist.
        return render(request, "chat/room_missing.html", status=404)
    state = selectors.room_enter_state(room_id=room_id, user_id=user_id, limit=settings.CHAT_PAGE_SIZE)
    at = _anchor(request)
    if at is not None and at <= summary.room.last_seq:
        state["messages"] = selectors.messages_around(
            room_id=room_id, user_id=user_id, seq=at, limit=settings.CHAT_PAGE_SIZE
        )
    else:
        at = None
    members = ParticipantSerializer(room_selectors.participant_list(room_id=room_id, user_id=user_id), many=True).data
    room = RoomSerializer(summary).data
    rooms = _rooms(request)
    config = _chat_config(
        request,
        rooms=rooms,
        room=room,
        state=state,
        members=members,
        at=at,
        page_size=settings.CHAT_PAGE_SIZE,
        max_body_bytes=settings.CHAT_MAX_BODY_BYTES,
    )
    context = {
        "rooms": rooms,
        "room": room,
        "title": room["title"],
        "is_group": summary.room.kind == Room.Kind.GROUP,
        "can_manage": summary.role in (Participant.Role.OWNER, Participant.Role.ADMIN),
        "chat_config": config,
    }
    return render(request, "chat/room.html", context)
